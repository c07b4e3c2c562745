// SPDX-License-Identifier: GPL-2.0
//! klpctl's logic: what it reads from sysfs and procfs, what it writes
//! there, and the module system calls. Every path starts at [`Roots`], so
//! the tests run it against a fake tree in a temporary directory.

use serde::Serialize;
use std::ffi::CString;
use std::fmt;
use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Exit codes, as `klpctl --help` documents them.
pub mod exit {
    /// Done.
    pub const OK: i32 = 0;
    /// Anything else: an I/O error, or the kernel refused a write.
    pub const FAILED: i32 = 1;
    /// Bad command line (clap's own code).
    pub const USAGE: i32 = 2;
    /// No such patch (or module).
    pub const NO_SUCH_PATCH: i32 = 3;
    /// Permission denied: most commands need root.
    pub const NOT_PERMITTED: i32 = 4;
    /// This kernel has no livepatch support (no /sys/kernel/livepatch).
    pub const NO_LIVEPATCH: i32 = 5;
    /// The file is not a livepatch module.
    pub const NOT_A_LIVEPATCH: i32 = 6;
    /// A transition did not finish in time (`load` reversed it).
    pub const TIMED_OUT: i32 = 7;
}

/// Where sysfs and procfs are: `/sys` and `/proc`, or a test's tree.
#[derive(Clone, Debug)]
pub struct Roots {
    pub sys: PathBuf,
    pub proc: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            sys: "/sys".into(),
            proc: "/proc".into(),
        }
    }
}

impl Roots {
    /// `/sys/kernel/livepatch`.
    pub fn livepatch(&self) -> PathBuf {
        self.sys.join("kernel/livepatch")
    }

    /// One patch's directory.
    pub fn patch(&self, name: &str) -> PathBuf {
        self.livepatch().join(name)
    }

    /// Fails with [`Error::NoLivepatch`] unless the kernel has livepatch.
    pub fn check(&self) -> Result<(), Error> {
        if self.livepatch().is_dir() {
            Ok(())
        } else {
            Err(Error::NoLivepatch)
        }
    }
}

/// What went wrong, each with its exit code.
#[derive(Debug)]
pub enum Error {
    NoLivepatch,
    NoSuchPatch(String),
    NotPermitted(String),
    NotALivepatch(String),
    /// The kernel refused a write or a system call.
    Refused {
        what: String,
        err: io::Error,
        hint: &'static str,
    },
    Io {
        what: String,
        err: io::Error,
    },
    /// A transition did not finish in time; the tasks that held it.
    TimedOut {
        what: String,
        blockers: Vec<Task>,
    },
    Usage(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::NoLivepatch => exit::NO_LIVEPATCH,
            Error::NoSuchPatch(_) => exit::NO_SUCH_PATCH,
            Error::NotPermitted(_) => exit::NOT_PERMITTED,
            Error::NotALivepatch(_) => exit::NOT_A_LIVEPATCH,
            Error::TimedOut { .. } => exit::TIMED_OUT,
            Error::Usage(_) => exit::USAGE,
            Error::Refused { .. } | Error::Io { .. } => exit::FAILED,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoLivepatch => write!(
                f,
                "livepatch is not in this kernel (no /sys/kernel/livepatch; CONFIG_LIVEPATCH)"
            ),
            Error::NoSuchPatch(name) => write!(f, "no such patch: '{name}'"),
            Error::NotPermitted(what) => write!(
                f,
                "{what}: permission denied (are you root? module loading may also be \
                 disabled or locked down)"
            ),
            Error::NotALivepatch(path) => write!(f, "{path} is not a livepatch module"),
            Error::Refused { what, err, hint } => {
                write!(f, "{what}: the kernel refused: {err}")?;
                if !hint.is_empty() {
                    write!(f, " ({hint})")?;
                }
                Ok(())
            }
            Error::Io { what, err } => write!(f, "{what}: {err}"),
            Error::TimedOut { what, blockers } => {
                write!(f, "{what}; {} task(s) held it", blockers.len())
            }
            Error::Usage(msg) => write!(f, "{msg}"),
        }
    }
}

/// A function of an object, as its sysfs directory names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Function {
    pub name: String,
    pub sympos: u64,
}

/// An object (vmlinux or a module) of a patch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Object {
    pub name: String,
    /// Whether the object is loaded and patched; `None` if unreadable.
    pub patched: Option<bool>,
    pub functions: Vec<Function>,
}

/// A patch, from `/sys/kernel/livepatch/<name>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Patch {
    pub name: String,
    pub enabled: bool,
    pub transition: bool,
    pub replace: Option<bool>,
    pub stack_order: Option<u32>,
    pub objects: Vec<Object>,
}

impl Patch {
    /// The state a transition of this patch moves tasks to: 1 patching,
    /// 0 unpatching; `None` without a transition.
    pub fn target(&self) -> Option<i32> {
        self.transition.then_some(i32::from(self.enabled))
    }

    /// The names of its functions.
    pub fn function_names(&self) -> impl Iterator<Item = &str> {
        self.objects
            .iter()
            .flat_map(|o| o.functions.iter().map(|f| f.name.as_str()))
    }
}

fn io_error(what: &Path, err: io::Error) -> Error {
    match err.kind() {
        io::ErrorKind::PermissionDenied => Error::NotPermitted(what.display().to_string()),
        _ => Error::Io {
            what: what.display().to_string(),
            err,
        },
    }
}

fn read_trimmed(path: &Path) -> io::Result<String> {
    Ok(fs::read_to_string(path)?.trim_end().to_string())
}

fn read_bool(path: &Path) -> io::Result<bool> {
    match read_trimmed(path)?.as_str() {
        "0" => Ok(false),
        "1" => Ok(true),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("'{other}' is not 0 or 1"),
        )),
    }
}

fn optional<T>(r: io::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Subdirectories of `dir`, sorted by name.
fn subdirs(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            out.push((
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            ));
        }
    }
    out.sort();
    Ok(out)
}

fn read_object(name: String, dir: &Path) -> io::Result<Object> {
    let patched = optional(read_bool(&dir.join("patched")))?;
    let mut functions = Vec::new();
    for (entry, _) in subdirs(dir)? {
        // "<function>,<sympos>"
        let (name, sympos) = match entry.rsplit_once(',') {
            Some((n, p)) => (n.to_string(), p.parse().unwrap_or(0)),
            None => (entry, 0),
        };
        functions.push(Function { name, sympos });
    }
    Ok(Object {
        name,
        patched,
        functions,
    })
}

/// Reads one patch; [`Error::NoSuchPatch`] if it is not there.
pub fn read_patch(roots: &Roots, name: &str) -> Result<Patch, Error> {
    roots.check()?;
    let dir = roots.patch(name);
    if !dir.is_dir() {
        return Err(Error::NoSuchPatch(name.to_string()));
    }
    let read = || -> io::Result<Patch> {
        let mut objects = Vec::new();
        for (obj, path) in subdirs(&dir)? {
            objects.push(read_object(obj, &path)?);
        }
        Ok(Patch {
            name: name.to_string(),
            enabled: read_bool(&dir.join("enabled"))?,
            transition: read_bool(&dir.join("transition"))?,
            replace: optional(read_bool(&dir.join("replace")))?,
            stack_order: optional(read_trimmed(&dir.join("stack_order")))?
                .and_then(|s| s.parse().ok()),
            objects,
        })
    };
    match read() {
        Ok(p) => Ok(p),
        // Removed while we read it: ENOENT, or ENODEV from the files of a
        // directory on its way out (a disabled patch is freed a moment
        // after its transition ends).
        Err(e) if !dir.exists() || e.raw_os_error() == Some(libc::ENODEV) => {
            Err(Error::NoSuchPatch(name.to_string()))
        }
        Err(e) => Err(io_error(&dir, e)),
    }
}

/// Every patch, in stack order (the order they were enabled in).
pub fn list(roots: &Roots) -> Result<Vec<Patch>, Error> {
    roots.check()?;
    let dir = roots.livepatch();
    let mut patches = Vec::new();
    for (name, _) in subdirs(&dir).map_err(|e| io_error(&dir, e))? {
        match read_patch(roots, &name) {
            Ok(p) => patches.push(p),
            // Gone between the listing and the read.
            Err(Error::NoSuchPatch(_)) => {}
            Err(e) => return Err(e),
        }
    }
    patches.sort_by(|a, b| (a.stack_order, &a.name).cmp(&(b.stack_order, &b.name)));
    Ok(patches)
}

/// The patch in transition, if any (there is at most one).
pub fn in_transition(roots: &Roots) -> Result<Option<Patch>, Error> {
    Ok(list(roots)?.into_iter().find(|p| p.transition))
}

/// One frame of a task's kernel stack, from `/proc/<pid>/stack`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Frame {
    pub function: String,
    pub module: Option<String>,
    pub text: String,
    /// On a function the transition waits for the task to leave.
    pub patched: bool,
}

impl Frame {
    /// Parses "[<0>] name+0x1f/0x40 [module]".
    pub fn parse(line: &str) -> Frame {
        let text = line.trim().to_string();
        let body = match text.split_once("] ") {
            Some((addr, rest)) if addr.starts_with("[<") => rest,
            _ => text.as_str(),
        };
        let function = body
            .split(['+', ' '])
            .next()
            .unwrap_or_default()
            .to_string();
        let module = body
            .rsplit_once(" [")
            .and_then(|(_, m)| m.strip_suffix(']'))
            .map(str::to_string);
        Frame {
            function,
            module,
            text,
            patched: false,
        }
    }
}

/// A thread, with its livepatch state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Task {
    pub pid: u32,
    pub comm: String,
    pub patch_state: i32,
    /// Empty when unreadable (it needs root and CONFIG_STACKTRACE).
    pub stack: Vec<Frame>,
}

impl Task {
    /// Whether it still has to switch to `target` (-1: no transition
    /// concerns it).
    pub fn pending_for(&self, target: i32) -> bool {
        self.patch_state != -1 && self.patch_state != target
    }
}

/// Every thread's `patch_state` (threads that exit while we look are
/// skipped), without stacks.
pub fn tasks(roots: &Roots) -> Result<Vec<Task>, Error> {
    let mut out = Vec::new();
    let procs = fs::read_dir(&roots.proc).map_err(|e| io_error(&roots.proc, e))?;
    for proc_entry in procs.flatten() {
        let Ok(_) = proc_entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(threads) = fs::read_dir(proc_entry.path().join("task")) else {
            continue;
        };
        for t in threads.flatten() {
            let Ok(pid) = t.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let dir = t.path();
            let state = match read_trimmed(&dir.join("patch_state")) {
                Ok(state) => state,
                // Only the task's owner may read it: without root, the
                // counts would be silently wrong.
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    return Err(io_error(&dir.join("patch_state"), e));
                }
                // Exited while we looked.
                Err(_) => continue,
            };
            let Ok(patch_state) = state.parse() else {
                continue;
            };
            let comm = read_trimmed(&dir.join("comm")).unwrap_or_default();
            out.push(Task {
                pid,
                comm,
                patch_state,
                stack: Vec::new(),
            });
        }
    }
    out.sort_by_key(|t| t.pid);
    Ok(out)
}

/// How many threads have not reached `target` yet.
pub fn pending_count(roots: &Roots, target: i32) -> Result<usize, Error> {
    Ok(tasks(roots)?
        .iter()
        .filter(|t| t.pending_for(target))
        .count())
}

/// The kernel stack of thread `pid`, with the frames on `patch`'s
/// functions (or in its module) marked.
pub fn stack(roots: &Roots, pid: u32, patch: &Patch) -> Vec<Frame> {
    let path = roots.proc.join(format!("{pid}/task/{pid}/stack"));
    let names: Vec<&str> = patch.function_names().collect();
    let read = || -> Vec<Frame> {
        let Ok(text) = fs::read_to_string(&path) else {
            return Vec::new();
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let mut f = Frame::parse(l);
                f.patched = names.contains(&f.function.as_str())
                    || f.module.as_deref() == Some(patch.name.as_str());
                f
            })
            .collect()
    };
    // A task caught running (a sleeper waking up for a moment) shows a
    // partial stack or none: look a few times for the frame that holds it.
    let mut frames = read();
    for _ in 0..5 {
        if frames.iter().any(|f| f.patched) {
            break;
        }
        sleep(Duration::from_millis(20));
        frames = read();
    }
    frames
}

/// The patch in transition (`name`'s, when given) and the threads holding
/// it, with their stacks. `None` when no such transition runs.
pub fn blocked(roots: &Roots, name: Option<&str>) -> Result<Option<(Patch, Vec<Task>)>, Error> {
    let patch = match name {
        Some(n) => Some(read_patch(roots, n)?),
        None => in_transition(roots)?,
    };
    let Some(patch) = patch else {
        return Ok(None);
    };
    let Some(target) = patch.target() else {
        return Ok(None);
    };
    let mut holders: Vec<Task> = tasks(roots)?
        .into_iter()
        .filter(|t| t.pending_for(target))
        .collect();
    for t in &mut holders {
        t.stack = stack(roots, t.pid, &patch);
    }
    Ok(Some((patch, holders)))
}

/// Writes `value` to the attribute `attr` of patch `name`. Opens without
/// O_CREAT, so a missing file reads as a missing patch, not EACCES.
pub fn write_attr(roots: &Roots, name: &str, attr: &str, value: &str) -> Result<(), Error> {
    roots.check()?;
    let dir = roots.patch(name);
    if !dir.is_dir() {
        return Err(Error::NoSuchPatch(name.to_string()));
    }
    let path = dir.join(attr);
    let what = format!("writing {value} to {}", path.display());
    let result = fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| io::Write::write_all(&mut f, value.as_bytes()));
    result.map_err(|err| match err.kind() {
        _ if !dir.exists() || err.raw_os_error() == Some(libc::ENODEV) => {
            Error::NoSuchPatch(name.to_string())
        }
        io::ErrorKind::NotFound => Error::Io { what, err },
        io::ErrorKind::PermissionDenied => Error::NotPermitted(what),
        _ => Error::Refused {
            hint: refusal_hint(attr, value, err.raw_os_error()),
            what,
            err,
        },
    })
}

fn refusal_hint(attr: &str, value: &str, errno: Option<i32>) -> &'static str {
    match (attr, value, errno) {
        ("enabled", "1", Some(libc::EINVAL)) => "it is enabled already",
        ("enabled", "0", Some(libc::EINVAL)) => "it is disabled already",
        ("enabled", _, Some(libc::EBUSY)) => "another patch is in transition",
        ("force" | "signal", _, Some(libc::EINVAL)) => "no transition of this patch is in progress",
        _ => "",
    }
}

/// How a wait ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Waited {
    /// The transition finished; the patch is there, enabled or not.
    Done,
    /// The patch went away while we waited (a disabled patch is freed).
    Gone,
    TimedOut,
}

/// What a wait reports at each look.
pub struct Tick<'a> {
    pub patch: &'a Patch,
    pub pending: usize,
    pub elapsed: Duration,
}

/// Waits until `name`'s transition ends, looking every `interval` and
/// telling `tick` the pending tasks. [`Error::NoSuchPatch`] if there is no
/// such patch to begin with.
pub fn wait_patch(
    roots: &Roots,
    name: &str,
    timeout: Option<Duration>,
    interval: Duration,
    mut tick: impl FnMut(&Tick<'_>),
) -> Result<Waited, Error> {
    let start = Instant::now();
    let mut seen = false;
    loop {
        let patch = match read_patch(roots, name) {
            Ok(p) => p,
            // Gone since we first saw it: a disabled patch is freed.
            Err(Error::NoSuchPatch(_)) if seen => return Ok(Waited::Gone),
            Err(e) => return Err(e),
        };
        seen = true;
        let Some(target) = patch.target() else {
            return Ok(Waited::Done);
        };
        let elapsed = start.elapsed();
        if timeout.is_some_and(|t| elapsed >= t) {
            return Ok(Waited::TimedOut);
        }
        let pending = pending_count(roots, target)?;
        tick(&Tick {
            patch: &patch,
            pending,
            elapsed,
        });
        sleep(interval);
    }
}

/// What `.modinfo` says about a module file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ModInfo {
    pub name: Option<String>,
    pub livepatch: bool,
}

fn le(bytes: &[u8], at: usize, len: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(len)?)?;
    Some(b.iter().rev().fold(0, |v, &x| (v << 8) | u64::from(x)))
}

/// Reads the `.modinfo` section of a little-endian ELF64 module. `None`
/// if the file is not one, or has no such section.
pub fn modinfo(elf: &[u8]) -> Option<ModInfo> {
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let shoff = usize::try_from(le(elf, 0x28, 8)?).ok()?;
    let shentsize = usize::try_from(le(elf, 0x3a, 2)?).ok()?;
    let shnum = usize::try_from(le(elf, 0x3c, 2)?).ok()?;
    let shstrndx = usize::try_from(le(elf, 0x3e, 2)?).ok()?;
    if shentsize < 0x28 {
        return None;
    }
    // A section header's start, its name's offset, and its bytes in the file
    // (sections like .bss have none: only the two that matter are sliced).
    let header = |i: usize| shoff.checked_add(i.checked_mul(shentsize)?);
    let name_of = |i: usize| -> Option<usize> { usize::try_from(le(elf, header(i)?, 4)?).ok() };
    let data_of = |i: usize| -> Option<&[u8]> {
        let h = header(i)?;
        let off = usize::try_from(le(elf, h.checked_add(0x18)?, 8)?).ok()?;
        let size = usize::try_from(le(elf, h.checked_add(0x20)?, 8)?).ok()?;
        elf.get(off..off.checked_add(size)?)
    };
    let strtab = data_of(shstrndx)?;
    for i in 0..shnum {
        let Some(name) = name_of(i).and_then(|n| strtab.get(n..)) else {
            continue;
        };
        if !name.starts_with(b".modinfo\0") {
            continue;
        }
        let data = data_of(i)?;
        let mut info = ModInfo::default();
        for entry in data.split(|&b| b == 0) {
            let entry = String::from_utf8_lossy(entry);
            if let Some(n) = entry.strip_prefix("name=") {
                info.name = Some(n.to_string());
            } else if entry == "livepatch=Y" {
                info.livepatch = true;
            }
        }
        return Some(info);
    }
    None
}

/// The module name the kernel will give `path`: `.modinfo`'s, else the
/// file's stem with dashes as underscores.
pub fn module_name(path: &Path, info: &ModInfo) -> String {
    info.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().replace('-', "_"))
            .unwrap_or_default()
    })
}

fn errno_error(what: String, err: io::Error, hint: &'static str) -> Error {
    match err.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => Error::NotPermitted(what),
        _ => Error::Refused { what, err, hint },
    }
}

/// Loads a module file (`finit_module(2)`).
pub fn load_module(path: &Path, params: &str) -> Result<(), Error> {
    let file = fs::File::open(path).map_err(|e| io_error(path, e))?;
    let params =
        CString::new(params).map_err(|_| Error::Usage("parameters contain a NUL".into()))?;
    // SAFETY: a valid descriptor and a NUL-terminated string that outlive
    // the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            file.as_raw_fd(),
            params.as_ptr(),
            0 as libc::c_int,
        )
    };
    if ret == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    let hint = match err.raw_os_error() {
        Some(libc::EEXIST) => "a module of that name is loaded already",
        Some(libc::EINVAL) => "see the kernel log (dmesg)",
        _ => "",
    };
    Err(errno_error(
        format!("loading {}", path.display()),
        err,
        hint,
    ))
}

/// Whether loaded module `name` is a livepatch module (its taint flags
/// have K).
pub fn is_livepatch_module(roots: &Roots, name: &str) -> Result<bool, Error> {
    let path = roots.sys.join("module").join(name).join("taint");
    match read_trimmed(&path) {
        Ok(t) => Ok(t.contains('K')),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NoSuchPatch(name.to_string())),
        Err(e) => Err(io_error(&path, e)),
    }
}

/// Unloads module `name` (`delete_module(2)`), retrying for `patience`
/// while it is still in use: a patch just disabled lets go of its module
/// a moment after its directory goes.
pub fn unload_module(name: &str, patience: Duration) -> Result<(), Error> {
    let cname = CString::new(name).map_err(|_| Error::Usage("bad module name".into()))?;
    let start = Instant::now();
    loop {
        // SAFETY: a NUL-terminated string that outlives the call.
        let ret =
            unsafe { libc::syscall(libc::SYS_delete_module, cname.as_ptr(), libc::O_NONBLOCK) };
        if ret == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ENOENT) => return Err(Error::NoSuchPatch(name.to_string())),
            Some(libc::EAGAIN) | Some(libc::EBUSY) if start.elapsed() < patience => {
                sleep(Duration::from_millis(50));
            }
            _ => {
                return Err(errno_error(
                    format!("unloading module {name}"),
                    err,
                    "still in use",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests;
