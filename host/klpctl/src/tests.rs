// SPDX-License-Identifier: GPL-2.0
//! klpctl against a fake /sys and /proc in a temporary directory.

use super::*;
use std::fs;
use tempfile::TempDir;

struct Fake {
    _dir: TempDir,
    roots: Roots,
}

fn put(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

impl Fake {
    fn new() -> Fake {
        let dir = TempDir::new().unwrap();
        let roots = Roots {
            sys: dir.path().join("sys"),
            proc: dir.path().join("proc"),
        };
        fs::create_dir_all(roots.livepatch()).unwrap();
        fs::create_dir_all(&roots.proc).unwrap();
        Fake { _dir: dir, roots }
    }

    /// A patch with `funcs` ("object/function,sympos") and its attributes.
    fn patch(&self, name: &str, enabled: u8, transition: u8, order: u32, funcs: &[&str]) {
        let dir = self.roots.patch(name);
        put(&dir.join("enabled"), &format!("{enabled}\n"));
        put(&dir.join("transition"), &format!("{transition}\n"));
        put(&dir.join("replace"), "0\n");
        put(&dir.join("stack_order"), &format!("{order}\n"));
        put(&dir.join("force"), "");
        for f in funcs {
            let (obj, func) = f.split_once('/').unwrap();
            put(&dir.join(obj).join("patched"), "1\n");
            fs::create_dir_all(dir.join(obj).join(func)).unwrap();
        }
    }

    fn task(&self, pid: u32, comm: &str, state: i32, stack: &str) {
        let dir = self.roots.proc.join(format!("{pid}/task/{pid}"));
        put(&dir.join("patch_state"), &format!("{state}\n"));
        put(&dir.join("comm"), &format!("{comm}\n"));
        put(&dir.join("stack"), stack);
    }
}

#[test]
fn no_livepatch_dir() {
    let fake = Fake::new();
    fs::remove_dir(fake.roots.livepatch()).unwrap();
    let err = list(&fake.roots).unwrap_err();
    assert!(matches!(err, Error::NoLivepatch));
    assert_eq!(err.exit_code(), exit::NO_LIVEPATCH);
}

#[test]
fn lists_patches_in_stack_order_with_objects_and_functions() {
    let fake = Fake::new();
    fake.patch("b_patch", 1, 0, 1, &["vmlinux/cmdline_proc_show,1"]);
    fake.patch(
        "a_patch",
        1,
        1,
        2,
        &[
            "vmlinux/meminfo_proc_show,1",
            "test_mod/test_fn,1",
            "test_mod/other_fn,2",
        ],
    );
    let patches = list(&fake.roots).unwrap();
    let names: Vec<_> = patches.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["b_patch", "a_patch"]);
    let a = &patches[1];
    assert!(a.enabled && a.transition);
    assert_eq!(a.replace, Some(false));
    assert_eq!(a.stack_order, Some(2));
    assert_eq!(a.target(), Some(1));
    let objs: Vec<_> = a.objects.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(objs, ["test_mod", "vmlinux"]);
    assert_eq!(
        a.objects[0].functions,
        [
            Function {
                name: "other_fn".into(),
                sympos: 2
            },
            Function {
                name: "test_fn".into(),
                sympos: 1
            }
        ]
    );
    assert_eq!(a.objects[0].patched, Some(true));
}

#[test]
fn json_names_every_field() {
    let fake = Fake::new();
    fake.patch("p", 1, 0, 1, &["vmlinux/f,1"]);
    let json = serde_json::to_value(list(&fake.roots).unwrap()).unwrap();
    assert_eq!(json[0]["name"], "p");
    assert_eq!(json[0]["enabled"], true);
    assert_eq!(json[0]["transition"], false);
    assert_eq!(json[0]["stack_order"], 1);
    assert_eq!(json[0]["objects"][0]["name"], "vmlinux");
    assert_eq!(json[0]["objects"][0]["functions"][0]["name"], "f");
    assert_eq!(json[0]["objects"][0]["functions"][0]["sympos"], 1);
}

#[test]
fn older_kernels_without_stack_order_still_list() {
    let fake = Fake::new();
    fake.patch("p", 1, 0, 1, &[]);
    fs::remove_file(fake.roots.patch("p").join("stack_order")).unwrap();
    let p = read_patch(&fake.roots, "p").unwrap();
    assert_eq!(p.stack_order, None);
}

#[test]
fn missing_patch() {
    let fake = Fake::new();
    let err = read_patch(&fake.roots, "nope").unwrap_err();
    assert!(matches!(err, Error::NoSuchPatch(ref n) if n == "nope"));
    assert_eq!(err.exit_code(), exit::NO_SUCH_PATCH);
    let err = write_attr(&fake.roots, "nope", "enabled", "0").unwrap_err();
    assert_eq!(err.exit_code(), exit::NO_SUCH_PATCH);
}

#[test]
fn garbage_in_an_attribute_is_an_error() {
    let fake = Fake::new();
    fake.patch("p", 1, 0, 1, &[]);
    put(&fake.roots.patch("p").join("enabled"), "maybe\n");
    let err = read_patch(&fake.roots, "p").unwrap_err();
    assert_eq!(err.exit_code(), exit::FAILED);
    assert!(err.to_string().contains("not 0 or 1"), "{err}");
}

#[test]
fn write_does_not_create_missing_attributes() {
    let fake = Fake::new();
    fake.patch("p", 1, 1, 1, &[]);
    let err = write_attr(&fake.roots, "p", "signal", "1").unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(!fake.roots.patch("p").join("signal").exists());
    write_attr(&fake.roots, "p", "force", "1").unwrap();
    assert_eq!(
        fs::read_to_string(fake.roots.patch("p").join("force")).unwrap(),
        "1"
    );
}

#[test]
fn pending_counts_tasks_not_in_the_target_state() {
    let fake = Fake::new();
    fake.task(1, "init", 1, "");
    fake.task(2, "kthreadd", 0, "");
    fake.task(3, "sleeper", 0, "");
    fake.task(4, "idle-ish", -1, "");
    assert_eq!(pending_count(&fake.roots, 1).unwrap(), 2);
    assert_eq!(pending_count(&fake.roots, 0).unwrap(), 1);
    // A /proc entry that is not a pid, and a task with no patch_state (it
    // exited while we looked), are skipped.
    put(&fake.roots.proc.join("self/task/9/patch_state"), "0\n");
    fs::create_dir_all(fake.roots.proc.join("5/task/5")).unwrap();
    assert_eq!(pending_count(&fake.roots, 1).unwrap(), 2);
}

#[test]
fn parses_stack_frames() {
    let f = Frame::parse("[<0>] test_klp_rs_busy_fn+0x4f/0x70 [test_klp_rs_busy]");
    assert_eq!(f.function, "test_klp_rs_busy_fn");
    assert_eq!(f.module.as_deref(), Some("test_klp_rs_busy"));
    let f = Frame::parse("[<0>] msleep+0x2d/0x40");
    assert_eq!(f.function, "msleep");
    assert_eq!(f.module, None);
}

#[test]
fn blocked_lists_holders_with_patched_frames_marked() {
    let fake = Fake::new();
    fake.patch(
        "busy_patch",
        1,
        1,
        1,
        &["test_klp_rs_busy/test_klp_rs_busy_fn,1"],
    );
    fake.task(1, "init", 1, "[<0>] do_wait+0x1/0x2\n");
    fake.task(
        42,
        "test_klp_rs_busy",
        0,
        "[<0>] msleep+0x2d/0x40\n[<0>] test_klp_rs_busy_fn+0x4f/0x70 [test_klp_rs_busy]\n[<0>] kthread+0x10/0x20\n",
    );
    let (patch, tasks) = blocked(&fake.roots, None).unwrap().unwrap();
    assert_eq!(patch.name, "busy_patch");
    assert_eq!(tasks.len(), 1);
    let t = &tasks[0];
    assert_eq!(
        (t.pid, t.comm.as_str(), t.patch_state),
        (42, "test_klp_rs_busy", 0)
    );
    let marked: Vec<_> = t.stack.iter().map(|f| f.patched).collect();
    assert_eq!(marked, [false, true, false]);
}

#[test]
fn blocked_when_unpatching_marks_the_patch_module() {
    let fake = Fake::new();
    fake.patch(
        "busy_patch",
        0,
        1,
        1,
        &["test_klp_rs_busy/test_klp_rs_busy_fn,1"],
    );
    fake.task(
        7,
        "worker",
        1,
        "[<0>] livepatch_busy_fn+0x1/0x2 [busy_patch]\n",
    );
    fake.task(8, "done", 0, "");
    let (patch, tasks) = blocked(&fake.roots, Some("busy_patch")).unwrap().unwrap();
    assert_eq!(patch.target(), Some(0));
    assert_eq!(tasks.len(), 1);
    assert!(tasks[0].stack[0].patched);
}

#[test]
fn blocked_without_a_transition() {
    let fake = Fake::new();
    fake.patch("p", 1, 0, 1, &[]);
    fake.task(1, "init", -1, "");
    assert!(blocked(&fake.roots, None).unwrap().is_none());
    assert!(blocked(&fake.roots, Some("p")).unwrap().is_none());
    assert!(matches!(
        blocked(&fake.roots, Some("q")),
        Err(Error::NoSuchPatch(_))
    ));
}

#[test]
fn wait_ends_when_the_transition_does() {
    let fake = Fake::new();
    fake.patch("p", 1, 1, 1, &[]);
    fake.task(3, "t", 0, "");
    let transition = fake.roots.patch("p").join("transition");
    let mut ticks = Vec::new();
    let w = wait_patch(&fake.roots, "p", None, Duration::ZERO, |t| {
        ticks.push(t.pending);
        if ticks.len() == 3 {
            fs::write(&transition, "0\n").unwrap();
        }
    })
    .unwrap();
    assert_eq!(w, Waited::Done);
    assert_eq!(ticks, [1, 1, 1]);
}

#[test]
fn wait_times_out_and_sees_a_patch_go() {
    let fake = Fake::new();
    fake.patch("p", 1, 1, 1, &[]);
    let w = wait_patch(
        &fake.roots,
        "p",
        Some(Duration::from_millis(30)),
        Duration::from_millis(5),
        |_| {},
    )
    .unwrap();
    assert_eq!(w, Waited::TimedOut);
    // Removed while waited for: gone; never there: no such patch.
    let dir = fake.roots.patch("p");
    let w = wait_patch(&fake.roots, "p", None, Duration::ZERO, |_| {
        fs::remove_dir_all(&dir).unwrap();
    })
    .unwrap();
    assert_eq!(w, Waited::Gone);
    let err = wait_patch(&fake.roots, "p", None, Duration::ZERO, |_| {}).unwrap_err();
    assert_eq!(err.exit_code(), exit::NO_SUCH_PATCH);
}

#[test]
fn only_livepatch_modules_count_as_ours() {
    let fake = Fake::new();
    put(&fake.roots.sys.join("module/lp/taint"), "OK\n");
    put(&fake.roots.sys.join("module/e1000/taint"), "\n");
    assert!(is_livepatch_module(&fake.roots, "lp").unwrap());
    assert!(!is_livepatch_module(&fake.roots, "e1000").unwrap());
    assert!(matches!(
        is_livepatch_module(&fake.roots, "absent"),
        Err(Error::NoSuchPatch(_))
    ));
}

/// A minimal ELF64 file: a .bss-like section with no bytes in the file
/// (its offset and size point past the end), .modinfo, .shstrtab.
fn elf_with_modinfo(modinfo: &[u8]) -> Vec<u8> {
    let shstrtab = b"\0.modinfo\0.shstrtab\0.bss\0";
    let mut elf = vec![0u8; 64];
    elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
    let modinfo_off = elf.len();
    elf.extend_from_slice(modinfo);
    let strtab_off = elf.len();
    elf.extend_from_slice(shstrtab);
    let shoff = elf.len();
    let header = |name: u32, off: usize, size: usize| {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(&name.to_le_bytes());
        h[0x18..0x20].copy_from_slice(&(off as u64).to_le_bytes());
        h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
        h
    };
    elf.extend(header(0, 0, 0));
    elf.extend(header(20, 1 << 40, 1 << 20));
    elf.extend(header(1, modinfo_off, modinfo.len()));
    elf.extend(header(10, strtab_off, shstrtab.len()));
    elf[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
    elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
    elf[0x3c..0x3e].copy_from_slice(&4u16.to_le_bytes());
    elf[0x3e..0x40].copy_from_slice(&3u16.to_le_bytes());
    elf
}

#[test]
fn reads_modinfo() {
    let elf = elf_with_modinfo(b"license=GPL\0livepatch=Y\0name=livepatch_sample\0");
    let info = modinfo(&elf).unwrap();
    assert_eq!(
        info,
        ModInfo {
            name: Some("livepatch_sample".into()),
            livepatch: true
        }
    );
    let plain = modinfo(&elf_with_modinfo(b"license=GPL\0name=m\0")).unwrap();
    assert!(!plain.livepatch);
    assert_eq!(modinfo(b"not an elf file at all"), None);
    // Truncated or lying headers are not a panic.
    let mut bad = elf.clone();
    bad[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(modinfo(&bad), None);
    assert_eq!(modinfo(&elf[..70]), None);
    // The string table index out of range, a header size too small.
    let mut bad = elf.clone();
    bad[0x3e..0x40].copy_from_slice(&9u16.to_le_bytes());
    assert_eq!(modinfo(&bad), None);
    let mut bad = elf.clone();
    bad[0x3a..0x3c].copy_from_slice(&8u16.to_le_bytes());
    assert_eq!(modinfo(&bad), None);
}

#[test]
fn a_section_name_beyond_the_string_table_is_skipped() {
    let mut elf = elf_with_modinfo(b"livepatch=Y\0name=m\0");
    let shoff = u64::from_le_bytes(elf[0x28..0x30].try_into().unwrap()) as usize;
    // The .bss-like header's name offset, far past .shstrtab's end.
    elf[shoff + 64..shoff + 68].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(modinfo(&elf).unwrap().livepatch);
}

#[test]
fn module_name_falls_back_to_the_file_name() {
    let none = ModInfo::default();
    assert_eq!(
        module_name(Path::new("/x/livepatch-sample.ko"), &none),
        "livepatch_sample"
    );
    let named = ModInfo {
        name: Some("real".into()),
        livepatch: true,
    };
    assert_eq!(module_name(Path::new("/x/other.ko"), &named), "real");
}
