//! A reference model of the `.klp.sym.` and `.klp.rela.` grammar that
//! `klp_names` documents, and the invariants every parse must keep.
//!
//! Host-only: the property test (`names_props`) and the fuzz target
//! (`host/fuzz`) both call [`check`], so they hold the parsers to the same
//! rules. The model is written differently on purpose (splits and
//! `str::parse` rather than byte scans, literal prefixes and byte ranges
//! rather than the parser's constants and `is_ascii_graphic`), so a slip in
//! one is unlikely to be repeated in the other.

use crate::klp_names::{
    parse_rela, parse_sym, KlpRela, KlpSym, NameError, MAX_OBJECT_NAME, MAX_SYMBOL_NAME,
};

/// Printable ASCII but space: `!` to `~`.
fn printable(b: u8) -> bool {
    (b'!'..=b'~').contains(&b)
}

/// An object name: 1 to `MAX_OBJECT_NAME` printable bytes, no comma, and no
/// dot (the dot ends it).
pub fn object_ok(o: &[u8]) -> bool {
    (1..=MAX_OBJECT_NAME).contains(&o.len())
        && o.iter().all(|&b| printable(b) && b != b',' && b != b'.')
}

/// A symbol name: 1 to `MAX_SYMBOL_NAME` printable bytes, no comma (the last
/// comma ends it); dots are fine (`foo.cold`).
pub fn symbol_ok(s: &[u8]) -> bool {
    (1..=MAX_SYMBOL_NAME).contains(&s.len()) && s.iter().all(|&b| printable(b) && b != b',')
}

/// A target section: printable and non-empty. The grammar bounds neither
/// its length nor its commas: nothing after it needs delimiting.
pub fn section_ok(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| printable(b))
}

/// `<object>.<rest>`, the object ending at the first dot.
fn split_object(rest: &[u8]) -> Result<(&[u8], &[u8]), NameError> {
    let mut parts = rest.splitn(2, |&b| b == b'.');
    let object = parts.next().unwrap_or_default();
    let after = parts.next().ok_or(NameError::Object)?;
    if !object_ok(object) {
        return Err(NameError::Object);
    }
    Ok((object, after))
}

/// A canonical decimal `u64`: one `u64::from_str` takes and `Display` prints
/// back unchanged (which rules out `+`, leading zeros and overflow).
fn canonical_u64(digits: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(digits).ok()?;
    let n: u64 = text.parse().ok()?;
    // Printed into a stack buffer: an allocation per name would slow the
    // property test several-fold.
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    let mut rest = n;
    loop {
        at -= 1;
        buf[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    (buf[at..] == *digits).then_some(n)
}

/// The model's `parse_sym`: errors in field order (prefix, object, symbol,
/// position), as the documentation lists them.
pub fn model_sym(name: &[u8]) -> Result<KlpSym<'_>, NameError> {
    let rest = name.strip_prefix(b".klp.sym.").ok_or(NameError::Prefix)?;
    let (object, rest) = split_object(rest)?;
    let mut parts = rest.rsplitn(2, |&b| b == b',');
    let digits = parts.next().unwrap_or_default();
    let symbol = parts.next().ok_or(NameError::Symbol)?;
    if !symbol_ok(symbol) {
        return Err(NameError::Symbol);
    }
    let position = canonical_u64(digits).ok_or(NameError::Position)?;
    Ok(KlpSym {
        object,
        symbol,
        position,
    })
}

/// The model's `parse_rela`.
pub fn model_rela(name: &[u8]) -> Result<KlpRela<'_>, NameError> {
    let rest = name.strip_prefix(b".klp.rela.").ok_or(NameError::Prefix)?;
    let (object, section) = split_object(rest)?;
    if !section_ok(section) {
        return Err(NameError::Section);
    }
    Ok(KlpRela { object, section })
}

/// Runs both parsers on `name` and panics (for the fuzzer: a crash) unless
/// each agrees with the model and what it accepts keeps the invariants:
/// fields within bounds, printable, delimiters only where allowed, and
/// re-formatting gives back `name` byte for byte. Returns both results so
/// callers can tell which paths they reached.
pub fn check(
    name: &[u8],
) -> (
    Result<KlpSym<'_>, NameError>,
    Result<KlpRela<'_>, NameError>,
) {
    let shown = name.escape_ascii();
    let sym = parse_sym(name);
    let rela = parse_rela(name);

    assert_eq!(sym, model_sym(name), "parse_sym vs model: {shown}");
    assert_eq!(rela, model_rela(name), "parse_rela vs model: {shown}");
    assert_eq!(
        sym == Err(NameError::Prefix),
        !name.starts_with(b".klp.sym."),
        "parse_sym prefix: {shown}"
    );
    assert_eq!(
        rela == Err(NameError::Prefix),
        !name.starts_with(b".klp.rela."),
        "parse_rela prefix: {shown}"
    );
    assert!(sym.is_err() || rela.is_err(), "both parsers took {shown}");

    if let Ok(s) = sym {
        assert!(object_ok(s.object), "sym object: {shown}");
        assert!(symbol_ok(s.symbol), "sym symbol: {shown}");
        assert_eq!(s.in_vmlinux(), s.object == b"vmlinux", "{shown}");
        let again = [
            &b".klp.sym."[..],
            s.object,
            b".",
            s.symbol,
            b",",
            s.position.to_string().as_bytes(),
        ]
        .concat();
        assert_eq!(again, name, "sym round trip: {shown}");
    }
    if let Ok(r) = rela {
        assert!(object_ok(r.object), "rela object: {shown}");
        assert!(section_ok(r.section), "rela section: {shown}");
        let again = [&b".klp.rela."[..], r.object, b".", r.section].concat();
        assert_eq!(again, name, "rela round trip: {shown}");
    }
    for e in [sym.err(), rela.err()].into_iter().flatten() {
        assert!(!e.reason().is_empty());
    }
    (sym, rela)
}
