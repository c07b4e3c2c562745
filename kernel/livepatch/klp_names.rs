// SPDX-License-Identifier: GPL-2.0

//! The names livepatch relocations are keyed by, as pure logic (compiled
//! into the kernel crate and, for `cargo test`, into the host workspace).
//!
//! - A livepatch symbol: `.klp.sym.<object>.<symbol>,<position>`, where the
//!   object is `vmlinux` or a module, the symbol may itself contain dots
//!   (`foo.cold`, `__func__.12`), and the position picks among symbols of
//!   that name (0: the name must be unique).
//! - A livepatch relocation section: `.klp.rela.<object>.<section>`, the
//!   relocations to write into `<section>` once `<object>` is loaded.
//!
//! Upstream parses both with `sscanf()`, which also lets through a signed
//! or space-prefixed position and anything after it. These parsers accept
//! exactly the documented forms: bounded, non-empty fields, printable ASCII
//! names, a plain decimal position that fits, and nothing else.

/// Longest object name (`MODULE_NAME_LEN - 1` at its smallest, 56 - 1).
pub const MAX_OBJECT_NAME: usize = 55;
/// Longest symbol name (`KSYM_NAME_LEN - 1`).
pub const MAX_SYMBOL_NAME: usize = 511;

/// How a livepatch symbol's name starts.
pub const SYM_PREFIX: &[u8] = b".klp.sym.";
/// How a livepatch relocation section's name starts.
pub const RELA_PREFIX: &[u8] = b".klp.rela.";

/// What is wrong with a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// It does not start with the expected prefix.
    Prefix,
    /// The object name is missing, too long, or has a bad byte.
    Object,
    /// The symbol name is missing, too long, or has a bad byte.
    Symbol,
    /// The position is missing, not plain decimal (leading zeros included),
    /// or too large.
    Position,
    /// The relocation section names no target section.
    Section,
}

impl NameError {
    /// What to tell the user.
    pub fn reason(self) -> &'static str {
        match self {
            NameError::Prefix => "bad prefix",
            NameError::Object => "bad object name",
            NameError::Symbol => "bad symbol name",
            NameError::Position => "bad symbol position",
            NameError::Section => "no target section",
        }
    }
}

/// A parsed `.klp.sym.` name, borrowing from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KlpSym<'a> {
    /// `vmlinux` or a module name.
    pub object: &'a [u8],
    /// The symbol's name in that object.
    pub symbol: &'a [u8],
    /// Which of the symbols of that name (from 1); 0: the only one.
    pub position: u64,
}

impl KlpSym<'_> {
    /// Whether the symbol lives in vmlinux rather than a module.
    pub fn in_vmlinux(&self) -> bool {
        self.object == b"vmlinux"
    }
}

/// A parsed `.klp.rela.` section name, borrowing from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KlpRela<'a> {
    /// The object whose loading the relocations wait for.
    pub object: &'a [u8],
    /// The section they are written into.
    pub section: &'a [u8],
}

/// `name` if it is 1 to `max` bytes of printable ASCII without space or
/// comma, else `err`.
fn field(name: &[u8], max: usize, err: NameError) -> Result<&[u8], NameError> {
    let ok = |&b: &u8| b.is_ascii_graphic() && b != b',';
    if name.is_empty() || name.len() > max || !name.iter().all(ok) {
        return Err(err);
    }
    Ok(name)
}

/// The object name at the start of `rest`, up to the first dot, which must
/// follow it; returns it and what comes after that dot.
fn object(rest: &[u8]) -> Result<(&[u8], &[u8]), NameError> {
    let dot = rest
        .iter()
        .position(|&b| b == b'.')
        .ok_or(NameError::Object)?;
    let name = field(&rest[..dot], MAX_OBJECT_NAME, NameError::Object)?;
    Ok((name, &rest[dot + 1..]))
}

/// Parses `.klp.sym.<object>.<symbol>,<position>`.
pub fn parse_sym(name: &[u8]) -> Result<KlpSym<'_>, NameError> {
    let rest = name.strip_prefix(SYM_PREFIX).ok_or(NameError::Prefix)?;
    let (object, rest) = object(rest)?;
    // The symbol runs to the last comma: names never contain one, and this
    // way a stray comma in the position is caught there.
    let comma = rest
        .iter()
        .rposition(|&b| b == b',')
        .ok_or(NameError::Symbol)?;
    let symbol = field(&rest[..comma], MAX_SYMBOL_NAME, NameError::Symbol)?;
    let digits = &rest[comma + 1..];
    // Canonical decimal: digits only, no leading zero but for "0" itself.
    if digits.is_empty()
        || digits.len() > 20
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits.len() > 1 && digits[0] == b'0')
    {
        return Err(NameError::Position);
    }
    let position = digits.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    });
    Ok(KlpSym {
        object,
        symbol,
        position: position.ok_or(NameError::Position)?,
    })
}

/// Parses `.klp.rela.<object>.<section>`.
pub fn parse_rela(name: &[u8]) -> Result<KlpRela<'_>, NameError> {
    let rest = name.strip_prefix(RELA_PREFIX).ok_or(NameError::Prefix)?;
    let (object, section) = object(rest)?;
    if section.is_empty() || !section.iter().all(u8::is_ascii_graphic) {
        return Err(NameError::Section);
    }
    Ok(KlpRela { object, section })
}
