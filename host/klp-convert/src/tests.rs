use super::*;
use std::process::Command;

const R_64: u32 = 1;
const R_PC32: u32 = 2;
const R_PLT32: u32 = 4;
const R_32S: u32 = 11;
const R_GOTPCREL: u32 = 9;

const TEXT: usize = 1;
const DATA: usize = 2;
const INIT_TEXT: usize = 3;
const COMMENT: usize = 4;

/// A small relocatable: .text, .data, .init.text, .comment (not allocated),
/// one .rela section per entry of `relocs` (target index, relocations),
/// .symtab, .strtab, .shstrtab. Symbol 1 is .text's section symbol; the
/// `syms` (name, st_shndx) follow from index 2, all global.
fn module(syms: &[(&str, u16)], relocs: &[(usize, Vec<Rela>)]) -> Vec<u8> {
    module_with(syms, relocs, &[])
}

/// module(), with empty sections named `extra` after the .rela ones.
fn module_with(syms: &[(&str, u16)], relocs: &[(usize, Vec<Rela>)], extra: &[&str]) -> Vec<u8> {
    struct Sec {
        name: String,
        kind: u32,
        flags: u64,
        data: Vec<u8>,
        link: u32,
        info: u32,
        entsize: u64,
    }
    let progbits = |name: &str, flags: u64, len: usize| Sec {
        name: name.into(),
        kind: 1,
        flags,
        data: vec![0; len],
        link: 0,
        info: 0,
        entsize: 0,
    };
    let mut secs = vec![
        progbits(".text", 0x6, 64),
        progbits(".data", 0x3, 16),
        progbits(".init.text", 0x6, 16),
        progbits(".comment", 0, 8),
    ];
    let symtab = (secs.len() + relocs.len() + extra.len() + 1) as u32;
    for (target, relas) in relocs {
        let mut data = Vec::new();
        relas.iter().for_each(|r| r.write(&mut data));
        secs.push(Sec {
            name: format!(".rela{}", secs[target - 1].name),
            kind: SHT_RELA,
            flags: SHF_INFO_LINK,
            data,
            link: symtab,
            info: *target as u32,
            entsize: 24,
        });
    }
    for name in extra {
        secs.push(progbits(name, 0, 0));
    }
    let mut strtab = vec![0u8];
    let mut symdata = vec![0u8; 24];
    let mut sym = |name: &str, info: u8, shndx: u16| {
        let off = if name.is_empty() {
            0
        } else {
            strtab.len() as u32
        };
        if !name.is_empty() {
            strtab.extend_from_slice(name.as_bytes());
            strtab.push(0);
        }
        symdata.extend_from_slice(&off.to_le_bytes());
        symdata.push(info);
        symdata.push(0);
        symdata.extend_from_slice(&shndx.to_le_bytes());
        symdata.extend_from_slice(&[0; 16]);
    };
    sym("", 3, TEXT as u16);
    for (name, shndx) in syms {
        sym(name, 0x10, *shndx);
    }
    secs.push(Sec {
        name: ".symtab".into(),
        kind: SHT_SYMTAB,
        flags: 0,
        data: symdata,
        link: symtab + 1,
        info: 2,
        entsize: 24,
    });
    secs.push(Sec {
        name: ".strtab".into(),
        kind: SHT_STRTAB,
        flags: 0,
        data: strtab,
        link: 0,
        info: 0,
        entsize: 0,
    });
    secs.push(Sec {
        name: ".shstrtab".into(),
        kind: SHT_STRTAB,
        flags: 0,
        data: Vec::new(),
        link: 0,
        info: 0,
        entsize: 0,
    });
    let mut shstrtab = vec![0u8];
    let mut name_offs = Vec::new();
    for s in &secs {
        name_offs.push(shstrtab.len() as u32);
        shstrtab.extend_from_slice(s.name.as_bytes());
        shstrtab.push(0);
    }
    secs.last_mut().unwrap().data = shstrtab;

    let mut out = vec![0u8; EHDR_SIZE];
    let mut shdrs = vec![Shdr {
        name: 0,
        kind: 0,
        flags: 0,
        addr: 0,
        offset: 0,
        size: 0,
        link: 0,
        info: 0,
        addralign: 0,
        entsize: 0,
    }];
    for (s, name) in secs.iter().zip(name_offs) {
        align(&mut out, 8);
        shdrs.push(Shdr {
            name,
            kind: s.kind,
            flags: s.flags,
            addr: 0,
            offset: out.len() as u64,
            size: s.data.len() as u64,
            link: s.link,
            info: s.info,
            addralign: 8,
            entsize: s.entsize,
        });
        out.extend_from_slice(&s.data);
    }
    align(&mut out, 8);
    let shoff = out.len() as u64;
    shdrs.iter().for_each(|s| s.write(&mut out));
    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = 2;
    out[5] = 1;
    out[6] = 1;
    out[16..18].copy_from_slice(&1u16.to_le_bytes());
    out[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
    out[20..24].copy_from_slice(&1u32.to_le_bytes());
    out[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
    out[0x34..0x36].copy_from_slice(&64u16.to_le_bytes());
    out[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
    out[0x3c..0x3e].copy_from_slice(&(shdrs.len() as u16).to_le_bytes());
    out[0x3e..0x40].copy_from_slice(&((shdrs.len() - 1) as u16).to_le_bytes());
    out
}

fn rela(offset: u64, sym: u32, kind: u32, addend: i64) -> Rela {
    Rela {
        offset,
        sym,
        kind,
        addend,
    }
}

/// Section name -> (header, relocations if SHT_RELA).
fn sections(img: &[u8]) -> Vec<(String, Shdr, Vec<Rela>)> {
    let elf = Elf::parse(img).expect("output parses");
    (1..elf.shdrs.len())
        .map(|i| {
            let relas = if elf.shdrs[i].kind == SHT_RELA {
                elf.relas(i).unwrap()
            } else {
                Vec::new()
            };
            (
                show(elf.section_name(i).unwrap()),
                elf.shdrs[i].clone(),
                relas,
            )
        })
        .collect()
}

fn section(img: &[u8], name: &str) -> (Shdr, Vec<Rela>) {
    sections(img)
        .into_iter()
        .find(|s| s.0 == name)
        .map(|s| (s.1, s.2))
        .unwrap_or_else(|| panic!("no section {name}"))
}

fn shndx(img: &[u8], name: &str) -> u16 {
    let elf = Elf::parse(img).unwrap();
    let syms = elf.symbols(elf.symtab().unwrap()).unwrap();
    syms.iter()
        .find(|s| s.name == name.as_bytes())
        .unwrap()
        .shndx
}

fn convert_ok(img: &[u8], opts: &Options) -> Outcome {
    convert(img, opts).unwrap_or_else(|e| panic!("refused: {e}"))
}

fn image(img: &[u8], opts: &Options) -> Vec<u8> {
    convert_ok(img, opts).image.expect("converted")
}

fn err(img: &[u8], opts: &Options) -> String {
    convert(img, opts).expect_err("refused").0
}

const SAVED: &str = ".klp.sym.vmlinux.saved_command_line,0";
const SECRET: &str = ".klp.sym.target.secret,0";

/// Symbols 2 SAVED, 3 SECRET, 4 printk; .text and .data refer to all.
fn sample() -> Vec<u8> {
    module(
        &[(SAVED, 0), (SECRET, 0), ("printk", 0)],
        &[
            (
                TEXT,
                vec![
                    rela(0, 2, R_PC32, -4),
                    rela(8, 4, R_PLT32, -4),
                    rela(16, 3, R_PLT32, -4),
                    rela(24, 2, R_32S, 0),
                    rela(32, 1, R_32S, 8),
                ],
            ),
            (DATA, vec![rela(0, 2, R_64, 0), rela(8, 1, R_64, 16)]),
        ],
    )
}

#[test]
fn moves_klp_relocations_into_klp_rela_sections() {
    let input = sample();
    let out = convert_ok(&input, &Options::default());
    let img = out.image.clone().unwrap();
    assert_eq!(out.symbols, [SAVED, SECRET]);
    assert_eq!(
        out.sections,
        [
            (".klp.rela.vmlinux..text".to_string(), 2),
            (".klp.rela.target..text".to_string(), 1),
            (".klp.rela.vmlinux..data".to_string(), 1),
        ]
    );

    // What stays, compacted and in order.
    let (text, kept) = section(&img, ".rela.text");
    assert_eq!(kept, [rela(8, 4, R_PLT32, -4), rela(32, 1, R_32S, 8)]);
    assert_eq!(text.size, 48);
    assert_eq!(section(&img, ".rela.data").1, [rela(8, 1, R_64, 16)]);

    let symtab = Elf::parse(&img).unwrap().symtab().unwrap() as u32;
    let klp = |name: &str, target: usize, want: &[Rela]| {
        let (sh, relas) = section(&img, name);
        assert_eq!(sh.kind, SHT_RELA);
        assert_eq!(sh.flags, SHF_ALLOC | SHF_INFO_LINK | SHF_RELA_LIVEPATCH);
        assert_eq!((sh.link, sh.info as usize), (symtab, target));
        assert_eq!((sh.entsize, sh.addralign), (24, 8));
        assert_eq!(sh.offset % 8, 0);
        assert_eq!(relas, want, "{name}");
    };
    klp(
        ".klp.rela.vmlinux..text",
        TEXT,
        &[rela(0, 2, R_PC32, -4), rela(24, 2, R_32S, 0)],
    );
    klp(".klp.rela.target..text", TEXT, &[rela(16, 3, R_PLT32, -4)]);
    klp(".klp.rela.vmlinux..data", DATA, &[rela(0, 2, R_64, 0)]);

    assert_eq!(shndx(&img, SAVED), SHN_LIVEPATCH);
    assert_eq!(shndx(&img, SECRET), SHN_LIVEPATCH);
    assert_eq!(shndx(&img, "printk"), SHN_UNDEF);

    // Every old section keeps its index, name and contents.
    let before = sections(&input);
    let after = sections(&img);
    assert_eq!(after.len(), before.len() + 3);
    for ((bn, bs, _), (an, as_, _)) in before.iter().zip(&after) {
        assert_eq!(bn, an);
        assert_eq!(
            (bs.kind, bs.flags, bs.link, bs.info),
            (as_.kind, as_.flags, as_.link, as_.info)
        );
        // Changed where asked: compacted relocations, names, st_shndx.
        if !bn.starts_with(".rela") && bn != ".shstrtab" && bn != ".symtab" {
            let (b, a) = (bs.offset as usize, as_.offset as usize);
            let n = bs.size as usize;
            assert_eq!(&input[b..b + n], &img[a..a + n], "{bn}");
        }
    }
}

#[test]
fn a_converted_module_is_left_alone() {
    let img = image(&sample(), &Options::default());
    assert_eq!(convert_ok(&img, &Options::default()), Outcome::default());
}

#[test]
fn a_module_without_klp_symbols_is_refused() {
    let img = module(&[("printk", 0)], &[(TEXT, vec![rela(0, 2, R_PLT32, -4)])]);
    assert!(err(&img, &Options::default()).contains("nothing to convert"));
}

#[test]
fn malformed_names_are_refused_unless_raw() {
    let raw = Options {
        raw: true,
        ..Options::default()
    };
    for name in [
        ".klp.sym.vmlinux.saved_command_line",
        ".klp.sym.vmlinux.saved_command_line,x",
        ".klp.sym.vmlinux.,0",
        ".klp.sym.vmlinux.foo,01",
        ".klp.symvmlinux.foo,0",
    ] {
        let img = module(&[(name, 0)], &[(TEXT, vec![rela(4, 2, R_32S, 0)])]);
        let e = err(&img, &Options::default());
        assert!(e.contains(name) && e.contains("--raw"), "{e}");
        if name.starts_with(".klp.sym.vmlinux.") {
            let out = image(&img, &raw);
            assert_eq!(
                section(&out, ".klp.rela.vmlinux..text").1,
                [rela(4, 2, R_32S, 0)]
            );
            assert_eq!(shndx(&out, name), SHN_LIVEPATCH);
        } else {
            // No object to file it under: one must be given.
            assert!(err(&img, &raw).contains("--section-object"));
            let forced = Options {
                section_objects: vec![ObjectMap::parse("vmlinux").unwrap()],
                ..raw.clone()
            };
            section(&image(&img, &forced), ".klp.rela.vmlinux..text");
        }
    }
}

#[test]
fn section_object_overrides_the_symbol_object() {
    let img = module(
        &[(".klp.sym.no_such_mod.foo,0", 0), (SECRET, 0)],
        &[(TEXT, vec![rela(0, 2, R_32S, 0), rela(8, 3, R_32S, 0)])],
    );
    let opts = |maps: &[&str]| Options {
        section_objects: maps.iter().map(|m| ObjectMap::parse(m).unwrap()).collect(),
        ..Options::default()
    };
    let names = |o: &Options| -> Vec<String> {
        convert_ok(&img, o)
            .sections
            .into_iter()
            .map(|s| s.0)
            .collect()
    };
    assert_eq!(
        names(&opts(&["no_such_mod=vmlinux"])),
        [".klp.rela.vmlinux..text", ".klp.rela.target..text"]
    );
    assert_eq!(names(&opts(&["vmlinux"])), [".klp.rela.vmlinux..text"]);
    assert_eq!(
        names(&opts(&["other=vmlinux"])),
        [".klp.rela.no_such_mod..text", ".klp.rela.target..text"]
    );
    for bad in ["", "a.b", "x=", "=x", "a,b", "x=a b"] {
        assert!(ObjectMap::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn set_type_rewrites_only_converted_relocations() {
    let opts = Options {
        set_type: Some(R_GOTPCREL),
        ..Options::default()
    };
    let img = image(&sample(), &opts);
    let (_, klp) = section(&img, ".klp.rela.vmlinux..text");
    assert_eq!(
        klp,
        [rela(0, 2, R_GOTPCREL, -4), rela(24, 2, R_GOTPCREL, 0)]
    );
    assert_eq!(
        section(&img, ".rela.text").1,
        [rela(8, 4, R_PLT32, -4), rela(32, 1, R_32S, 8)]
    );
}

#[test]
fn set_info_and_misalign_break_only_the_created_headers() {
    let by_index = Options {
        set_info: Some(SectionRef::Index(65000)),
        ..Options::default()
    };
    let img = image(&sample(), &by_index);
    assert_eq!(section(&img, ".klp.rela.vmlinux..text").0.info, 65000);
    assert_ne!(section(&img, ".rela.text").0.info, 65000);

    let by_name = Options {
        set_info: Some(SectionRef::parse(".symtab")),
        ..Options::default()
    };
    let img = image(&sample(), &by_name);
    let symtab = Elf::parse(&img).unwrap().symtab().unwrap() as u32;
    assert_eq!(section(&img, ".klp.rela.vmlinux..text").0.info, symtab);
    let missing = Options {
        set_info: Some(SectionRef::parse(".no_such")),
        ..Options::default()
    };
    assert!(err(&sample(), &missing).contains("no section '.no_such'"));

    let misalign = Options {
        misalign: true,
        ..Options::default()
    };
    let img = image(&sample(), &misalign);
    let (pad, _) = section(&img, ".klp_rs_pad");
    let (klp, relas) = section(&img, ".klp.rela.vmlinux..text");
    assert_eq!((pad.size, pad.addralign, pad.flags), (1, 8, SHF_ALLOC));
    assert_eq!(klp.addralign, 1);
    assert_eq!(relas.len(), 2);
}

#[test]
fn targets_livepatch_cannot_write_later_are_refused() {
    let not_alloc = module(&[(SAVED, 0)], &[(COMMENT, vec![rela(0, 2, R_64, 0)])]);
    assert!(err(&not_alloc, &Options::default()).contains("not loaded into memory"));
    let init = |sym| module(&[(sym, 0)], &[(INIT_TEXT, vec![rela(0, 2, R_32S, 0)])]);
    assert!(err(&init(SECRET), &Options::default()).contains("freed"));
    // vmlinux relocations are written at load, while .init.text is there.
    section(
        &image(&init(SAVED), &Options::default()),
        ".klp.rela.vmlinux..init.text",
    );
}

#[test]
fn an_existing_section_of_the_same_name_is_refused() {
    let img = module_with(
        &[(SAVED, 0)],
        &[(TEXT, vec![rela(0, 2, R_32S, 0)])],
        &[".klp.rela.vmlinux..text"],
    );
    assert!(err(&img, &Options::default()).contains("already"));
}

#[test]
fn damaged_input_is_refused_without_panicking() {
    let img = sample();
    assert!(err(b"hello", &Options::default()).contains("not an ELF"));
    for len in 0..img.len() {
        let _ = convert(&img[..len], &Options::default());
    }
    for i in 0..img.len() {
        let mut bad = img.clone();
        bad[i] ^= 0xa5;
        let _ = convert(&bad, &Options::default());
    }
    let mut signed = img.clone();
    signed.extend_from_slice(SIG_MAGIC);
    assert!(err(&signed, &Options::default()).contains("signed"));
}

/// With a C compiler at hand: what clang really emits for the declarations
/// the selftest modules use, checked with binutils' readelf if present.
#[test]
fn converts_what_clang_emits() {
    // The harness's clang (harness/toolchain.sh exports its version).
    let versioned = std::env::var("KLP_LLVM_VERSION").map(|v| format!("clang-{v}"));
    let Some(cc) = versioned
        .into_iter()
        .chain(["clang".to_string()])
        .find(|cc| Command::new(cc).arg("--version").output().is_ok())
    else {
        eprintln!("no clang: skipped");
        return;
    };
    let dir = std::env::temp_dir().join(format!("klp-convert-test-{}", std::process::id()));
    fs_reset(&dir);
    let src = dir.join("lp.c");
    let obj = dir.join("lp.o");
    std::fs::write(
        &src,
        r#"
extern char *saved __asm__(".klp.sym.vmlinux.saved_command_line,0") __attribute__((weak));
extern unsigned long lookup(const char *) __asm__(".klp.sym.vmlinux.kallsyms_lookup_name,0") __attribute__((weak));
extern int secret __asm__(".klp.sym.target.secret,0") __attribute__((weak));
extern int printk(const char *, ...);
char **saved_ptr = &saved;
int show(void)
{
	return printk("%p %lu %s %d", &saved, lookup("x"), saved, secret);
}
"#,
    )
    .unwrap();
    let status = Command::new(cc)
        .args(["--target=x86_64-linux-gnu", "-O2", "-c", "-fno-pic"])
        .args([
            "-mcmodel=kernel",
            "-ffreestanding",
            "-fno-asynchronous-unwind-tables",
        ])
        .arg("-o")
        .arg(&obj)
        .arg(&src)
        .status()
        .unwrap();
    assert!(status.success());
    let input = std::fs::read(&obj).unwrap();
    let img = image(&input, &Options::default());

    let elf = Elf::parse(&img).unwrap();
    let syms = elf.symbols(elf.symtab().unwrap()).unwrap();
    let mut moved = 0;
    for (name, sh, relas) in sections(&img) {
        if sh.kind != SHT_RELA {
            continue;
        }
        let klp = name.starts_with(".klp.rela.");
        assert_eq!(klp, sh.flags & SHF_RELA_LIVEPATCH != 0, "{name}");
        for r in relas {
            let sym = &syms[r.sym as usize];
            let is_klp = sym.name.starts_with(b".klp.sym.");
            assert_eq!(klp, is_klp, "{name}: {}", show(sym.name));
            if klp {
                assert_eq!(sym.shndx, SHN_LIVEPATCH);
                moved += 1;
            }
        }
    }
    // &saved twice (code, data), saved, lookup(), secret.
    assert!(moved >= 5, "{moved} relocations moved");
    let names: Vec<String> = sections(&img).into_iter().map(|s| s.0).collect();
    for want in [
        ".klp.rela.vmlinux..text",
        ".klp.rela.vmlinux..data",
        ".klp.rela.target..text",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }

    let out = dir.join("lp-converted.o");
    std::fs::write(&out, &img).unwrap();
    if let Ok(r) = Command::new("readelf")
        .args(["-W", "-S", "-r", "-s"])
        .arg(&out)
        .output()
    {
        let stdout = String::from_utf8_lossy(&r.stdout);
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert!(r.status.success() && stderr.is_empty(), "readelf: {stderr}");
        assert!(stdout.contains("Relocation section '.klp.rela.vmlinux..text'"));
        assert!(stdout.contains("OS [0xff20] .klp.sym.vmlinux.saved_command_line,0"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn fs_reset(dir: &std::path::Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
}
