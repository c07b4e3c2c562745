//! klp-convert: see `--help`.

use klp_convert::{convert, ObjectMap, Options, SectionRef};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::{env, fs};

const HELP: &str = "\
Usage: klp-convert [OPTIONS] MODULE.ko...

Converts built livepatch modules (ELF64 x86_64 relocatables) in place, or
into OUTPUT with -o, to the livepatch ELF format
(Documentation/livepatch/module-elf-format.rst).

The module's C code declares what it reaches as livepatch symbols, e.g.
  extern char *saved __asm__(\".klp.sym.vmlinux.saved_command_line,0\") __weak;
and uses them normally. Every relocation, in any .rela section, against an
undefined symbol named .klp.sym.<object>.<symbol>,<position> moves to a
section .klp.rela.<object>.<section> (e.g. .klp.rela.vmlinux..text, named as
objtool's klp post-link names them; SHT_RELA, SHF_ALLOC | SHF_INFO_LINK |
SHF_RELA_LIVEPATCH, one per object and target section), and the symbol gets
st_shndx SHN_LIVEPATCH (0xff20). Names must parse as the kernel's strict
parser (kernel/livepatch/klp_names.rs) wants them. A module converted
already is left alone.

Options:
  -o, --output FILE      write the result to FILE (one MODULE only)
      --raw              convert every undefined symbol whose name starts
                         with .klp.sym, well-formed or not (for test modules
                         that must be refused by the kernel)
      --section-object [SYMOBJ=]OBJ
                         file relocations against symbols of object SYMOBJ
                         (of any object, without SYMOBJ=) under .klp.rela.OBJ.*
                         instead of their own object; repeatable, first
                         match wins
      --set-type N       give every converted relocation type N (e.g. 9,
                         R_X86_64_GOTPCREL, which the kernel refuses)
      --set-info N|NAME  give every created section sh_info N, or the index
                         of section NAME, as its target (e.g. 65000, 0 or
                         .comment, which the kernel must refuse)
      --misalign         place every created section at an odd address
                         once loaded, behind a one-byte SHF_ALLOC pad
  -v, --verbose          tell what was converted
  -h, --help             show this help

Exit status: 0 converted (or converted already), 1 refused, 2 bad usage.
";

struct Args {
    opts: Options,
    output: Option<PathBuf>,
    verbose: bool,
    inputs: Vec<PathBuf>,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        opts: Options::default(),
        output: None,
        verbose: false,
        inputs: Vec::new(),
    };
    let mut it = env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let value = |it: &mut dyn Iterator<Item = String>| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "-v" | "--verbose" => args.verbose = true,
            "--raw" => args.opts.raw = true,
            "-o" | "--output" => args.output = Some(value(&mut it)?.into()),
            "--section-object" => {
                let map = ObjectMap::parse(&value(&mut it)?).map_err(|e| e.to_string())?;
                args.opts.section_objects.push(map);
            }
            "--set-type" => {
                let v = value(&mut it)?;
                let n = v
                    .parse()
                    .map_err(|_| format!("--set-type: '{v}' is not a number"))?;
                args.opts.set_type = Some(n);
            }
            "--set-info" => args.opts.set_info = Some(SectionRef::parse(&value(&mut it)?)),
            "--misalign" => args.opts.misalign = true,
            "--" => args.inputs.extend(it.by_ref().map(PathBuf::from)),
            _ if arg.starts_with('-') && arg.len() > 1 => {
                return Err(format!("unknown option {arg}"))
            }
            _ => args.inputs.push(arg.into()),
        }
    }
    if args.inputs.is_empty() {
        return Err("no module given".into());
    }
    if args.output.is_some() && args.inputs.len() != 1 {
        return Err("-o takes exactly one module".into());
    }
    Ok(Some(args))
}

/// Replaces `path` by `data` through a temporary file beside it, keeping
/// its permissions, so that a failure never leaves half a module.
fn write_file(path: &Path, data: &[u8], like: Option<&Path>) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".klp-convert.tmp");
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, data)?;
    if let Some(like) = like {
        fs::set_permissions(&tmp, fs::metadata(like)?.permissions())?;
    }
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

fn run(args: &Args, input: &Path) -> Result<(), String> {
    let name = input.display();
    let data = fs::read(input).map_err(|e| format!("{name}: {e}"))?;
    let outcome = convert(&data, &args.opts).map_err(|e| format!("{name}: {e}"))?;
    let output = args.output.as_deref().unwrap_or(input);
    match &outcome.image {
        Some(image) => write_file(output, image, Some(input))
            .map_err(|e| format!("{}: {e}", output.display()))?,
        None if output != input => {
            fs::copy(input, output).map_err(|e| format!("{}: {e}", output.display()))?;
        }
        None => {}
    }
    if args.verbose {
        if outcome.image.is_none() {
            eprintln!("klp-convert: {name}: converted already");
        }
        for s in &outcome.symbols {
            eprintln!("klp-convert: {name}: symbol {s}");
        }
        for (s, n) in &outcome.sections {
            eprintln!("klp-convert: {name}: section {s}: {n} relocation(s)");
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("klp-convert: {e}\nTry 'klp-convert --help'.");
            return ExitCode::from(2);
        }
    };
    let mut status = ExitCode::SUCCESS;
    for input in &args.inputs {
        if let Err(e) = run(&args, input) {
            eprintln!("klp-convert: {e}");
            status = ExitCode::FAILURE;
        }
    }
    status
}
