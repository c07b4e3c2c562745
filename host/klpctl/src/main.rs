// SPDX-License-Identifier: GPL-2.0
//! klpctl: manage Linux livepatches from the command line.

use clap::{CommandFactory, Parser, Subcommand};
use comfy_table::{presets::UTF8_BORDERS_ONLY, Cell, ContentArrangement, Table};
use indicatif::{ProgressBar, ProgressStyle};
use klpctl::{exit, Error, Patch, Roots, Task, Waited};
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  failed: an I/O error, or the kernel refused (see the message and dmesg)
  2  bad command line
  3  no such patch (or module to unload)
  4  permission denied (most commands need root)
  5  livepatch is not in this kernel
  6  the file is not a livepatch module
  7  a transition did not finish in time (load then reverses it)";

/// Manage livepatches: list them, load and unload them with their
/// transitions followed, and find the tasks that hold a transition up.
#[derive(Parser)]
#[command(name = "klpctl", version, after_help = EXIT_CODES)]
struct Cli {
    /// Where sysfs is mounted.
    #[arg(long, global = true, env = "KLPCTL_SYSFS", default_value = "/sys")]
    sysfs: PathBuf,
    /// Where procfs is mounted.
    #[arg(long, global = true, env = "KLPCTL_PROC", default_value = "/proc")]
    procfs: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every patch with its objects and functions.
    List {
        /// JSON, for configuration management tools.
        #[arg(long)]
        json: bool,
    },
    /// Load a livepatch module and follow its transition. Past the timeout,
    /// signal the tasks still pending; if that does not help, reverse the
    /// transition, unload the module, report the blockers and fail.
    Load {
        /// The module file (.ko).
        module: PathBuf,
        /// Module parameters, as insmod takes them.
        params: Vec<String>,
        /// Seconds to wait for the transition (default: no limit).
        #[arg(long)]
        timeout: Option<f64>,
        /// Seconds to wait after signalling, before reversing.
        #[arg(long, default_value_t = 5.0)]
        grace: f64,
    },
    /// Disable a patch if enabled, wait for it to go, and unload its module.
    Unload {
        name: String,
        /// Seconds to wait for the unpatching transition.
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// Enable a patch again: turns an unpatching transition around (a
    /// disabled patch is gone; load its module again).
    Enable { name: String },
    /// Disable a patch and follow the unpatching transition.
    Disable {
        name: String,
        /// Seconds to wait for the transition.
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// Wait until a patch's transition (or any transition) finishes.
    Wait {
        name: Option<String>,
        /// Seconds to wait; then report the blockers and fail.
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// The tasks holding a transition up, with their kernel stacks; frames
    /// on the patch's functions are marked.
    Blocked {
        name: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Switch every pending task now. This may break the consistency model,
    /// and a patch forced while unpatching keeps its module loaded for good.
    Force {
        name: String,
        /// Yes, force it.
        #[arg(long)]
        yes: bool,
    },
    /// Send the pending tasks a fake signal (and wake pending kthreads).
    Signal { name: String },
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
}

fn secs(s: Option<f64>) -> Result<Option<Duration>, Error> {
    s.map(|s| Duration::try_from_secs_f64(s).map_err(|_| Error::Usage(format!("bad time: {s}"))))
        .transpose()
}

fn yes_no(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "1",
        Some(false) => "0",
        None => "-",
    }
}

fn print_list(patches: &[Patch]) {
    if patches.is_empty() {
        println!("no livepatches");
        return;
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(vec![
            "PATCH",
            "ENABLED",
            "TRANSITION",
            "REPLACE",
            "STACK",
            "OBJECT",
            "PATCHED",
            "FUNCTIONS (name,sympos)",
        ]);
    for p in patches {
        let objects: Vec<Option<&klpctl::Object>> = if p.objects.is_empty() {
            vec![None]
        } else {
            p.objects.iter().map(Some).collect()
        };
        for (i, o) in objects.into_iter().enumerate() {
            let first = i == 0;
            let funcs = o
                .map(|o| {
                    o.functions
                        .iter()
                        .map(|f| format!("{},{}", f.name, f.sympos))
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default();
            let patch_cell = |s: String| Cell::new(if first { s } else { String::new() });
            table.add_row(vec![
                patch_cell(p.name.clone()),
                patch_cell(yes_no(Some(p.enabled)).into()),
                patch_cell(yes_no(Some(p.transition)).into()),
                patch_cell(yes_no(p.replace).into()),
                patch_cell(p.stack_order.map_or("-".into(), |s| s.to_string())),
                Cell::new(o.map_or("-", |o| o.name.as_str())),
                Cell::new(o.map_or("-", |o| yes_no(o.patched))),
                Cell::new(funcs),
            ]);
        }
    }
    println!("{table}");
}

fn print_blocked(patch: &Patch, tasks: &[Task]) {
    let what = if patch.enabled {
        "patching"
    } else {
        "unpatching"
    };
    println!(
        "'{}': {what} transition held by {} task(s)",
        patch.name,
        tasks.len()
    );
    for t in tasks {
        println!("\n{} {} (patch_state {})", t.pid, t.comm, t.patch_state);
        if t.stack.is_empty() {
            println!("    (no stack: /proc/{}/stack is unreadable)", t.pid);
        }
        for f in &t.stack {
            let mark = if f.patched { "=>" } else { "  " };
            println!("  {mark} {}", f.text);
        }
    }
}

/// A live progress line on a terminal; nothing otherwise.
fn progress() -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Follows `name`'s transition with a progress line.
fn follow(roots: &Roots, name: &str, timeout: Option<Duration>) -> Result<Waited, Error> {
    let bar = progress();
    let result = klpctl::wait_patch(roots, name, timeout, Duration::from_millis(100), |t| {
        let what = if t.patch.enabled {
            "patching"
        } else {
            "unpatching"
        };
        bar.set_message(format!(
            "'{}': {what}, {} task(s) pending, {:.1}s",
            t.patch.name,
            t.pending,
            t.elapsed.as_secs_f64()
        ));
    });
    bar.finish_and_clear();
    result
}

/// The tasks holding `name`'s transition, or none when that cannot be
/// read.
fn blockers(roots: &Roots, name: &str) -> Vec<Task> {
    klpctl::blocked(roots, Some(name))
        .ok()
        .flatten()
        .map(|(_, tasks)| tasks)
        .unwrap_or_default()
}

fn timed_out(roots: &Roots, name: &str, what: String) -> Error {
    Error::TimedOut {
        what,
        blockers: blockers(roots, name),
    }
}

fn load(
    roots: &Roots,
    module: &std::path::Path,
    params: &[String],
    timeout: Option<Duration>,
    grace: Duration,
) -> Result<(), Error> {
    roots.check()?;
    let bytes = std::fs::read(module).map_err(|err| match err.kind() {
        io::ErrorKind::PermissionDenied => Error::NotPermitted(module.display().to_string()),
        _ => Error::Io {
            what: module.display().to_string(),
            err,
        },
    })?;
    let info = klpctl::modinfo(&bytes)
        .filter(|i| i.livepatch)
        .ok_or_else(|| Error::NotALivepatch(module.display().to_string()))?;
    let name = klpctl::module_name(module, &info);
    let start = Instant::now();
    klpctl::load_module(module, &params.join(" "))?;
    let gone = |why: &str| {
        // Loaded, but no patch to follow: take the module out again.
        let unloaded = klpctl::unload_module(&name, Duration::from_secs(10)).is_ok();
        Error::Io {
            what: format!("'{name}'"),
            err: io::Error::other(format!(
                "{why}; the module was {}",
                if unloaded { "unloaded" } else { "left loaded" }
            )),
        }
    };
    match follow(roots, &name, timeout) {
        Ok(Waited::Done) => {
            println!(
                "'{name}': enabled, transition complete in {:.2}s",
                start.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        Ok(Waited::Gone) => return Err(gone("the patch went away while patching")),
        Err(Error::NoSuchPatch(_)) => {
            return Err(gone("the module loaded, but made no patch of its name"))
        }
        Err(e) => return Err(e),
        Ok(Waited::TimedOut) => {}
    }
    // Past the timeout: hurry the stragglers, if this kernel can.
    let mut again = grace;
    match klpctl::write_attr(roots, &name, "signal", "1") {
        Ok(()) => eprintln!("klpctl: '{name}': signalled the pending tasks"),
        Err(Error::Io { .. }) => {
            eprintln!("klpctl: '{name}': this kernel has no signal file; not signalling");
            again = Duration::ZERO;
        }
        Err(e) => eprintln!("klpctl: {e}"),
    }
    if follow(roots, &name, Some(again)).is_ok_and(|w| w == Waited::Done) {
        println!(
            "'{name}': enabled, transition complete in {:.2}s (after signalling)",
            start.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let took = start.elapsed().as_secs_f64();
    let blockers = blockers(roots, &name);
    eprintln!("klpctl: '{name}': reversing the transition");
    // Tasks that switched and now sleep in the new code can hold the
    // reversal up too: bounded, and what is left is said.
    let reversed = klpctl::write_attr(roots, &name, "enabled", "0")
        .and_then(|()| follow(roots, &name, Some(REVERSAL_TIMEOUT)));
    let unload = || match klpctl::unload_module(&name, Duration::from_secs(10)) {
        Ok(()) => "reversed and unloaded".to_string(),
        Err(e) => format!("reversed, but the module is still loaded: {e}"),
    };
    let outcome = match reversed {
        // Disabled: freed now or a moment from now (unload_module waits).
        Ok(Waited::Gone) | Err(Error::NoSuchPatch(_)) => unload(),
        Ok(Waited::Done) if still_enabled(roots, &name) != Some(true) => unload(),
        Ok(Waited::TimedOut) => format!(
            "the reversal did not finish in {}s either: the patch is still in transition",
            REVERSAL_TIMEOUT.as_secs()
        ),
        Ok(Waited::Done) => "reversed, but the patch is still there".to_string(),
        Err(e) => format!("reversing failed: {e}"),
    };
    Err(Error::TimedOut {
        what: format!("'{name}': the patching transition did not finish in {took:.1}s; {outcome}"),
        blockers,
    })
}

/// How long `load` waits for the reversal of a transition that timed out.
const REVERSAL_TIMEOUT: Duration = Duration::from_secs(60);

fn unload(roots: &Roots, name: &str, timeout: Option<Duration>) -> Result<(), Error> {
    roots.check()?;
    match klpctl::read_patch(roots, name) {
        Ok(p) => {
            if p.enabled {
                klpctl::write_attr(roots, name, "enabled", "0")?;
            }
            let waited = match follow(roots, name, timeout) {
                Err(Error::NoSuchPatch(_)) => Waited::Gone,
                other => other?,
            };
            if waited == Waited::TimedOut {
                return Err(timed_out(
                    roots,
                    name,
                    format!("'{name}': the unpatching transition did not finish"),
                ));
            }
        }
        // Not a patch (any more): maybe its module is still loaded, but
        // only a livepatch module is ours to remove.
        Err(Error::NoSuchPatch(_)) => {
            if !klpctl::is_livepatch_module(roots, name)? {
                return Err(Error::NotALivepatch(format!("module {name}")));
            }
        }
        Err(e) => return Err(e),
    }
    klpctl::unload_module(name, Duration::from_secs(10))?;
    println!("'{name}': unloaded");
    Ok(())
}

/// Whether patch `name` is there and enabled now; `None` if it is gone.
fn still_enabled(roots: &Roots, name: &str) -> Option<bool> {
    klpctl::read_patch(roots, name).ok().map(|p| p.enabled)
}

fn run(cli: Cli) -> Result<(), Error> {
    let roots = Roots {
        sys: cli.sysfs,
        proc: cli.procfs,
    };
    match cli.command {
        Command::List { json } => {
            let patches = klpctl::list(&roots)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&patches).expect("serializable")
                );
            } else {
                print_list(&patches);
            }
        }
        Command::Load {
            module,
            params,
            timeout,
            grace,
        } => load(
            &roots,
            &module,
            &params,
            secs(timeout)?,
            secs(Some(grace))?.unwrap_or_default(),
        )?,
        Command::Unload { name, timeout } => unload(&roots, &name, secs(timeout)?)?,
        Command::Enable { name } => {
            klpctl::write_attr(&roots, &name, "enabled", "1")?;
            match follow(&roots, &name, None) {
                Ok(Waited::Done) if still_enabled(&roots, &name) == Some(true) => {
                    println!("'{name}': enabled")
                }
                Ok(_) | Err(Error::NoSuchPatch(_)) => {
                    return Err(Error::Io {
                        what: format!("'{name}'"),
                        err: io::Error::other("disabled meanwhile, and gone"),
                    })
                }
                Err(e) => return Err(e),
            }
        }
        Command::Disable { name, timeout } => {
            klpctl::write_attr(&roots, &name, "enabled", "0")?;
            match follow(&roots, &name, secs(timeout)?) {
                Ok(Waited::TimedOut) => {
                    return Err(timed_out(
                        &roots,
                        &name,
                        format!("'{name}': the unpatching transition did not finish"),
                    ))
                }
                // The transition ended with the patch still there and
                // enabled: enabled again meanwhile. (Disabled, it is freed
                // a moment later.)
                Ok(Waited::Done) if still_enabled(&roots, &name) == Some(true) => {
                    return Err(Error::Io {
                        what: format!("'{name}'"),
                        err: io::Error::other("enabled again before it was disabled"),
                    })
                }
                Ok(Waited::Done | Waited::Gone) | Err(Error::NoSuchPatch(_)) => {
                    println!("'{name}': disabled")
                }
                Err(e) => return Err(e),
            }
        }
        Command::Wait { name, timeout } => {
            let timeout = secs(timeout)?;
            let name = match name {
                Some(n) => n,
                None => match klpctl::in_transition(&roots)? {
                    Some(p) => p.name,
                    None => return Ok(()),
                },
            };
            if follow(&roots, &name, timeout)? == Waited::TimedOut {
                return Err(timed_out(
                    &roots,
                    &name,
                    format!("'{name}': the transition did not finish"),
                ));
            }
        }
        Command::Blocked { name, json } => match klpctl::blocked(&roots, name.as_deref())? {
            Some((patch, tasks)) if json => println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "patch": patch.name,
                    "target": patch.target(),
                    "tasks": tasks,
                }))
                .expect("serializable")
            ),
            Some((patch, tasks)) => print_blocked(&patch, &tasks),
            None if json => println!("null"),
            None => println!("no transition in progress"),
        },
        Command::Force { name, yes } => {
            if !yes {
                return Err(Error::Usage(format!(
                    "forcing '{name}' switches every pending task now, whatever it runs: \
                     this may break the consistency model, and a patch forced while \
                     unpatching keeps its module loaded for good. Run again with --yes \
                     to force."
                )));
            }
            klpctl::write_attr(&roots, &name, "force", "1")?;
            println!("'{name}': forced");
        }
        Command::Signal { name } => {
            klpctl::read_patch(&roots, &name)?;
            if !roots.patch(&name).join("signal").exists() {
                return Err(Error::Io {
                    what: format!("'{name}'"),
                    err: io::Error::other("this kernel has no signal file (it signals by itself)"),
                });
            }
            klpctl::write_attr(&roots, &name, "signal", "1")?;
            println!("'{name}': signalled the pending tasks");
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "klpctl", &mut io::stdout());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = io::stdout().flush();
            eprintln!("klpctl: {e}");
            if let Error::TimedOut { blockers, .. } = &e {
                for t in blockers {
                    eprintln!(
                        "  held by {} {} (patch_state {})",
                        t.pid, t.comm, t.patch_state
                    );
                    for f in t.stack.iter().filter(|f| f.patched) {
                        eprintln!("    => {}", f.text);
                    }
                }
            }
            debug_assert!(e.exit_code() != exit::OK);
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
