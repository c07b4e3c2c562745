use crate::klp_names::{
    parse_rela, parse_sym, KlpRela, KlpSym, NameError, MAX_OBJECT_NAME, MAX_SYMBOL_NAME,
};

fn sym(s: &str) -> Result<KlpSym<'_>, NameError> {
    parse_sym(s.as_bytes())
}

#[test]
fn sym_names_as_klp_build_writes_them() {
    assert_eq!(
        sym(".klp.sym.vmlinux.saved_command_line,0"),
        Ok(KlpSym {
            object: b"vmlinux",
            symbol: b"saved_command_line",
            position: 0
        })
    );
    let s = sym(".klp.sym.test_klp_mod.__func__.12,2").unwrap();
    assert_eq!(
        (s.object, s.symbol, s.position),
        (&b"test_klp_mod"[..], &b"__func__.12"[..], 2)
    );
    assert!(!s.in_vmlinux());
    assert!(sym(".klp.sym.vmlinux.x,1").unwrap().in_vmlinux());
    assert_eq!(
        sym(".klp.sym.m.f,18446744073709551615").unwrap().position,
        u64::MAX
    );
}

#[test]
fn sym_names_sscanf_lets_through_are_refused() {
    // Sign, space, trailing garbage, hex: all accepted by upstream's %lu.
    for bad in [
        ".klp.sym.vmlinux.f,-1",
        ".klp.sym.vmlinux.f, 1",
        ".klp.sym.vmlinux.f,1x",
        ".klp.sym.vmlinux.f,0x1",
        ".klp.sym.vmlinux.f,+1",
    ] {
        assert_eq!(sym(bad), Err(NameError::Position), "{bad}");
    }
    assert_eq!(
        sym(".klp.sym.m.f,18446744073709551616"),
        Err(NameError::Position)
    );
    assert_eq!(sym(".klp.sym.m.f,"), Err(NameError::Position));
    assert_eq!(sym(".klp.sym.m.f,01"), Err(NameError::Position));
    // The symbol runs to the last comma, and symbols hold none.
    assert_eq!(sym(".klp.sym.m.f,1,2"), Err(NameError::Symbol));
}

#[test]
fn sym_name_fields_are_checked() {
    assert_eq!(sym(".klp.rela.vmlinux.f,0"), Err(NameError::Prefix));
    assert_eq!(sym("klp.sym.vmlinux.f,0"), Err(NameError::Prefix));
    assert_eq!(sym(".klp.sym..f,0"), Err(NameError::Object));
    assert_eq!(sym(".klp.sym.vmlinux"), Err(NameError::Object));
    assert_eq!(sym(".klp.sym.vm linux.f,0"), Err(NameError::Object));
    assert_eq!(sym(".klp.sym.vmlinux.f"), Err(NameError::Symbol));
    assert_eq!(sym(".klp.sym.vmlinux.,0"), Err(NameError::Symbol));
    assert_eq!(sym(".klp.sym.vmlinux.f\u{7f},0"), Err(NameError::Symbol));
    let object = "m".repeat(MAX_OBJECT_NAME);
    assert!(sym(&format!(".klp.sym.{object}.f,0")).is_ok());
    assert_eq!(
        sym(&format!(".klp.sym.{object}m.f,0")),
        Err(NameError::Object)
    );
    let symbol = "f".repeat(MAX_SYMBOL_NAME);
    assert!(sym(&format!(".klp.sym.m.{symbol},0")).is_ok());
    assert_eq!(
        sym(&format!(".klp.sym.m.{symbol}f,0")),
        Err(NameError::Symbol)
    );
}

#[test]
fn rela_section_names() {
    assert_eq!(
        parse_rela(b".klp.rela.vmlinux..text.unlikely"),
        Ok(KlpRela {
            object: b"vmlinux",
            section: b".text.unlikely"
        })
    );
    assert_eq!(
        parse_rela(b".klp.rela.test_mod..text").unwrap().object,
        b"test_mod"
    );
    assert_eq!(
        parse_rela(b".klp.sym.vmlinux..text"),
        Err(NameError::Prefix)
    );
    assert_eq!(parse_rela(b".klp.rela..text"), Err(NameError::Object));
    assert_eq!(parse_rela(b".klp.rela.vmlinux"), Err(NameError::Object));
    assert_eq!(parse_rela(b".klp.rela.vmlinux."), Err(NameError::Section));
    let object = "m".repeat(MAX_OBJECT_NAME + 1);
    assert_eq!(
        parse_rela(format!(".klp.rela.{object}..text").as_bytes()),
        Err(NameError::Object)
    );
}

/// A small xorshift generator: the randomized test below needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Random mutations of valid names: the parsers never panic, whatever
/// they accept re-assembles to the input exactly, and accepted fields keep
/// their bounds.
#[test]
fn randomized_names_round_trip_or_fail_cleanly() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let seeds: [&[u8]; 4] = [
        b".klp.sym.vmlinux.saved_command_line,0",
        b".klp.sym.test_klp_mod.__func__.12,2",
        b".klp.rela.vmlinux..text.unlikely",
        b".klp.rela.mod..rodata",
    ];
    let alphabet = b".,klpsymrea0129 -_x\x00\xff";
    for _ in 0..200_000 {
        let mut name = seeds[(rng.next() % 4) as usize].to_vec();
        for _ in 0..(rng.next() % 4) {
            let at = (rng.next() as usize) % (name.len() + 1);
            match rng.next() % 3 {
                0 => name.insert(at, alphabet[(rng.next() as usize) % alphabet.len()]),
                1 if at < name.len() => {
                    name.remove(at);
                }
                _ if at < name.len() => name[at] = alphabet[(rng.next() as usize) % alphabet.len()],
                _ => {}
            }
        }
        if let Ok(s) = parse_sym(&name) {
            assert!(s.object.len() <= MAX_OBJECT_NAME && s.symbol.len() <= MAX_SYMBOL_NAME);
            let again = [
                b".klp.sym.",
                s.object,
                b".",
                s.symbol,
                b",",
                s.position.to_string().as_bytes(),
            ]
            .concat();
            assert_eq!(again, name, "{:?}", String::from_utf8_lossy(&name));
        }
        if let Ok(r) = parse_rela(&name) {
            assert!(
                !r.object.is_empty() && r.object.len() <= MAX_OBJECT_NAME && !r.section.is_empty()
            );
            assert_eq!([b".klp.rela.", r.object, b".", r.section].concat(), name);
        }
    }
}
