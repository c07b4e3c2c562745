//! Turns a built livepatch module's references to livepatch symbols into the
//! format of `Documentation/livepatch/module-elf-format.rst`.
//!
//! Input: an ELF64 little-endian x86_64 relocatable (`.ko`) whose code refers
//! to undefined symbols named `.klp.sym.<object>.<symbol>,<position>` through
//! ordinary relocations. Every such relocation moves out of its `.rela<sec>`
//! section into `.klp.rela.<object>.<sec>` (one section per object and
//! target section; `.klp.rela.vmlinux..text` for `.text`, as objtool names them), and the symbols get `st_shndx = SHN_LIVEPATCH`.
//!
//! The file is never re-laid out: relocation sections are compacted in place,
//! and the new relocation contents, a grown copy of the section name table
//! and a new section header table are appended. Existing section and symbol
//! indices, which relocations and the symbol table refer to, stay valid.

use klp_logic::klp_names::{parse_rela, parse_sym, MAX_OBJECT_NAME, RELA_PREFIX};
use std::fmt;

pub const SHF_ALLOC: u64 = 0x2;
pub const SHF_INFO_LINK: u64 = 0x40;
pub const SHF_RELA_LIVEPATCH: u64 = 0x0010_0000;
pub const SHN_UNDEF: u16 = 0;
pub const SHN_LIVEPATCH: u16 = 0xff20;
pub const SHT_PROGBITS: u32 = 1;
pub const SHT_SYMTAB: u32 = 2;
pub const SHT_STRTAB: u32 = 3;
pub const SHT_RELA: u32 = 4;
pub const SHT_NOBITS: u32 = 8;
pub const SHT_REL: u32 = 9;
pub const EM_X86_64: u16 = 62;
/// First reserved section index: a section count from here on would need
/// extended numbering, which the module loader does not support.
const SHN_LORESERVE: usize = 0xff00;
const EHDR_SIZE: usize = 64;
const SHDR_SIZE: usize = 64;
const SYM_SIZE: usize = 24;
pub const RELA_SIZE: usize = 24;
/// What `sign-file` appends; appending after it would break the signature.
const SIG_MAGIC: &[u8] = b"~Module signature appended~\n";
const SYM_PREFIX_LOOSE: &[u8] = b".klp.sym";

/// Why a module cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

fn fail<T>(msg: impl Into<String>) -> Result<T, Error> {
    Err(Error(msg.into()))
}

fn show(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

/// `--section-object [SYMOBJ=]OBJ`: relocations against symbols of object
/// SYMOBJ (of any object without it) go to `.klp.rela.OBJ.*` sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMap {
    pub from: Option<Vec<u8>>,
    pub to: Vec<u8>,
}

/// Whether `name` is a well-formed object name.
fn valid_object(name: &[u8]) -> bool {
    let mut probe = RELA_PREFIX.to_vec();
    probe.extend_from_slice(name);
    probe.extend_from_slice(b".s");
    matches!(parse_rela(&probe), Ok(r) if r.object == name)
}

impl ObjectMap {
    pub fn parse(arg: &str) -> Result<Self, Error> {
        let (from, to) = match arg.split_once('=') {
            Some((from, to)) => (Some(from.as_bytes().to_vec()), to.as_bytes()),
            None => (None, arg.as_bytes()),
        };
        for name in from.iter().map(Vec::as_slice).chain([to]) {
            if !valid_object(name) {
                return fail(format!(
                    "'{}' is not an object name (1 to {MAX_OBJECT_NAME} printable bytes, no '.' or ',')",
                    show(name)
                ));
            }
        }
        Ok(ObjectMap {
            from,
            to: to.to_vec(),
        })
    }
}

/// How to convert.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Convert every undefined symbol whose name starts with `.klp.sym`,
    /// well-formed or not, to build deliberately malformed test modules.
    pub raw: bool,
    /// Overrides of the object a symbol's relocations are filed under.
    pub section_objects: Vec<ObjectMap>,
    /// Give every converted relocation this type (tests of the loader).
    pub set_type: Option<u32>,
    /// Give every created section this `sh_info` (its target section):
    /// tests of the core's checks of relocation section headers.
    pub set_info: Option<SectionRef>,
    /// Place every created section at an odd address once loaded, behind a
    /// one-byte allocated pad: tests of the core's alignment checks.
    pub misalign: bool,
}

/// A section given on the command line: by index, or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionRef {
    Index(u32),
    Name(String),
}

impl SectionRef {
    /// A number is an index; anything else a name.
    pub fn parse(text: &str) -> Self {
        text.parse()
            .map_or_else(|_| SectionRef::Name(text.to_string()), SectionRef::Index)
    }
}

impl Options {
    fn section_object<'a>(&'a self, sym_object: Option<&'a [u8]>) -> Option<&'a [u8]> {
        self.section_objects
            .iter()
            .find(|m| m.from.is_none() || m.from.as_deref() == sym_object)
            .map(|m| m.to.as_slice())
            .or(sym_object)
    }
}

/// What a conversion did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The converted module; `None` if it had been converted already.
    pub image: Option<Vec<u8>>,
    /// The symbols made SHN_LIVEPATCH.
    pub symbols: Vec<String>,
    /// The sections created, with their number of relocations.
    pub sections: Vec<(String, usize)>,
}

/// One section header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shdr {
    pub name: u32,
    pub kind: u32,
    pub flags: u64,
    pub addr: u64,
    pub offset: u64,
    pub size: u64,
    pub link: u32,
    pub info: u32,
    pub addralign: u64,
    pub entsize: u64,
}

fn bytes(d: &[u8], off: usize, len: usize) -> Result<&[u8], Error> {
    off.checked_add(len)
        .and_then(|end| d.get(off..end))
        .ok_or_else(|| Error(format!("truncated file: {len} bytes at offset {off:#x}")))
}

fn u16_at(d: &[u8], off: usize) -> Result<u16, Error> {
    Ok(u16::from_le_bytes(bytes(d, off, 2)?.try_into().unwrap()))
}

fn u32_at(d: &[u8], off: usize) -> Result<u32, Error> {
    Ok(u32::from_le_bytes(bytes(d, off, 4)?.try_into().unwrap()))
}

fn u64_at(d: &[u8], off: usize) -> Result<u64, Error> {
    Ok(u64::from_le_bytes(bytes(d, off, 8)?.try_into().unwrap()))
}

fn usize_of(v: u64) -> Result<usize, Error> {
    usize::try_from(v).or_else(|_| fail(format!("value {v:#x} out of range")))
}

impl Shdr {
    fn read(d: &[u8], off: usize) -> Result<Self, Error> {
        Ok(Shdr {
            name: u32_at(d, off)?,
            kind: u32_at(d, off + 4)?,
            flags: u64_at(d, off + 8)?,
            addr: u64_at(d, off + 16)?,
            offset: u64_at(d, off + 24)?,
            size: u64_at(d, off + 32)?,
            link: u32_at(d, off + 40)?,
            info: u32_at(d, off + 44)?,
            addralign: u64_at(d, off + 48)?,
            entsize: u64_at(d, off + 56)?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.name.to_le_bytes());
        out.extend_from_slice(&self.kind.to_le_bytes());
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&self.addr.to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&self.link.to_le_bytes());
        out.extend_from_slice(&self.info.to_le_bytes());
        out.extend_from_slice(&self.addralign.to_le_bytes());
        out.extend_from_slice(&self.entsize.to_le_bytes());
    }
}

/// One symbol table entry, with the file offset it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sym<'a> {
    pub name: &'a [u8],
    pub info: u8,
    pub shndx: u16,
    pub value: u64,
    pub file_offset: usize,
}

/// One relocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rela {
    pub offset: u64,
    pub sym: u32,
    pub kind: u32,
    pub addend: i64,
}

impl Rela {
    pub fn read(e: &[u8]) -> Result<Self, Error> {
        let info = u64_at(e, 8)?;
        Ok(Rela {
            offset: u64_at(e, 0)?,
            sym: (info >> 32) as u32,
            kind: info as u32,
            addend: u64_at(e, 16)? as i64,
        })
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.offset.to_le_bytes());
        let info = (u64::from(self.sym) << 32) | u64::from(self.kind);
        out.extend_from_slice(&info.to_le_bytes());
        out.extend_from_slice(&self.addend.to_le_bytes());
    }
}

/// A parsed, validated ELF64 LE x86_64 relocatable.
pub struct Elf<'a> {
    pub data: &'a [u8],
    pub shdrs: Vec<Shdr>,
    pub shstrndx: usize,
}

impl<'a> Elf<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Self, Error> {
        if data.len() < EHDR_SIZE || &data[..4] != b"\x7fELF" {
            return fail("not an ELF file");
        }
        if data[4] != 2 || data[5] != 1 {
            return fail("not a 64-bit little-endian ELF file");
        }
        if u16_at(data, 16)? != 1 {
            return fail("not a relocatable object (ET_REL)");
        }
        if u16_at(data, 18)? != EM_X86_64 {
            return fail("not an x86_64 object");
        }
        let shoff = usize_of(u64_at(data, 0x28)?)?;
        let shentsize = usize::from(u16_at(data, 0x3a)?);
        let shnum = usize::from(u16_at(data, 0x3c)?);
        let shstrndx = usize::from(u16_at(data, 0x3e)?);
        if shentsize != SHDR_SIZE {
            return fail(format!("section header size {shentsize}, not {SHDR_SIZE}"));
        }
        if shnum == 0 || shstrndx == 0 || shstrndx >= shnum {
            return fail("no section headers, or extended section numbering");
        }
        let table = bytes(data, shoff, shnum * SHDR_SIZE)?;
        let shdrs = (0..shnum)
            .map(|i| Shdr::read(table, i * SHDR_SIZE))
            .collect::<Result<Vec<_>, _>>()?;
        let elf = Elf {
            data,
            shdrs,
            shstrndx,
        };
        for i in 1..shnum {
            elf.section_data(i)?;
        }
        let names = elf.section_data(shstrndx)?;
        if elf.shdrs[shstrndx].kind != SHT_STRTAB || names.last() != Some(&0) {
            return fail("bad section name table");
        }
        for i in 1..shnum {
            elf.section_name(i)?;
        }
        Ok(elf)
    }

    /// The contents of section `i` (empty for SHT_NOBITS).
    pub fn section_data(&self, i: usize) -> Result<&'a [u8], Error> {
        let sh = self
            .shdrs
            .get(i)
            .ok_or_else(|| Error(format!("no section {i}")))?;
        if sh.kind == SHT_NOBITS {
            return Ok(&[]);
        }
        bytes(self.data, usize_of(sh.offset)?, usize_of(sh.size)?)
            .map_err(|e| Error(format!("section {i}: {e}")))
    }

    fn string(&self, table: usize, off: u32) -> Result<&'a [u8], Error> {
        let d = self.section_data(table)?;
        let tail = d
            .get(off as usize..)
            .ok_or_else(|| Error(format!("string offset {off:#x} outside section {table}")))?;
        let end = tail
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| Error(format!("unterminated string in section {table}")))?;
        Ok(&tail[..end])
    }

    pub fn section_name(&self, i: usize) -> Result<&'a [u8], Error> {
        self.string(self.shstrndx, self.shdrs[i].name)
    }

    /// The index of the one symbol table.
    pub fn symtab(&self) -> Result<usize, Error> {
        let mut tabs = (0..self.shdrs.len()).filter(|&i| self.shdrs[i].kind == SHT_SYMTAB);
        match (tabs.next(), tabs.next()) {
            (Some(i), None) => Ok(i),
            _ => fail("not exactly one symbol table"),
        }
    }

    pub fn symbols(&self, symtab: usize) -> Result<Vec<Sym<'a>>, Error> {
        let sh = &self.shdrs[symtab];
        let strtab = sh.link as usize;
        if sh.entsize != SYM_SIZE as u64
            || self.shdrs.get(strtab).map(|s| s.kind) != Some(SHT_STRTAB)
        {
            return fail("bad symbol table");
        }
        let d = self.section_data(symtab)?;
        let base = usize_of(sh.offset)?;
        d.chunks_exact(SYM_SIZE)
            .enumerate()
            .map(|(i, e)| {
                Ok(Sym {
                    name: self.string(strtab, u32_at(e, 0)?)?,
                    info: e[4],
                    shndx: u16_at(e, 6)?,
                    value: u64_at(e, 8)?,
                    file_offset: base + i * SYM_SIZE,
                })
            })
            .collect()
    }

    /// The relocations of SHT_RELA section `i`.
    pub fn relas(&self, i: usize) -> Result<Vec<Rela>, Error> {
        let sh = &self.shdrs[i];
        let d = self.section_data(i)?;
        if sh.entsize != RELA_SIZE as u64 || d.len() % RELA_SIZE != 0 {
            return fail(format!(
                "relocation section '{}' has a bad size",
                show(self.section_name(i)?)
            ));
        }
        d.chunks_exact(RELA_SIZE).map(Rela::read).collect()
    }
}

/// The object a `.klp.sym` name refers to; `Ok(None)` when only `--raw`
/// lets it through and no object can be made out.
fn symbol_object(name: &[u8], raw: bool) -> Result<Option<&[u8]>, Error> {
    match parse_sym(name) {
        Ok(sym) => Ok(Some(sym.object)),
        Err(e) if !raw => fail(format!(
            "symbol '{}': {} (expected .klp.sym.<object>.<symbol>,<position>; --raw converts it anyway)",
            show(name),
            e.reason()
        )),
        Err(_) => {
            let object = name
                .strip_prefix(b".klp.sym.".as_slice())
                .and_then(|rest| rest.split(|&b| b == b'.').next())
                .filter(|o| valid_object(o));
            Ok(object)
        }
    }
}

/// The relocations going to one new `.klp.rela` section.
struct Group {
    object: Vec<u8>,
    target: u32,
    relas: Vec<u8>,
    count: usize,
}

fn align(out: &mut Vec<u8>, to: usize) {
    out.resize(out.len().next_multiple_of(to), 0);
}

/// Converts the module in `data`; see the crate documentation.
pub fn convert(data: &[u8], opts: &Options) -> Result<Outcome, Error> {
    if data.ends_with(SIG_MAGIC) {
        return fail("the module is signed: convert it before signing");
    }
    let elf = Elf::parse(data)?;
    let symtab = elf.symtab()?;
    let syms = elf.symbols(symtab)?;

    // The section object of each symbol to convert, by symbol index.
    let mut object_of: Vec<Option<&[u8]>> = vec![None; syms.len()];
    let mut converted_before = 0;
    for (i, sym) in syms.iter().enumerate().skip(1) {
        if !sym.name.starts_with(SYM_PREFIX_LOOSE) {
            continue;
        }
        match sym.shndx {
            SHN_LIVEPATCH => converted_before += 1,
            SHN_UNDEF => {
                let object = symbol_object(sym.name, opts.raw)?;
                let section_object = opts.section_object(object).ok_or_else(|| {
                    Error(format!(
                        "symbol '{}': no object name in it; give one with --section-object",
                        show(sym.name)
                    ))
                })?;
                object_of[i] = Some(section_object);
            }
            _ => {}
        }
    }
    if object_of.iter().all(Option::is_none) {
        if converted_before > 0 {
            return Ok(Outcome::default());
        }
        return fail("no undefined .klp.sym symbol: nothing to convert");
    }

    let mut groups: Vec<Group> = Vec::new();
    // Relocation sections that lose entries: index and what they keep.
    let mut compacted: Vec<(usize, Vec<u8>)> = Vec::new();
    for (i, sh) in elf.shdrs.iter().enumerate() {
        if sh.link as usize != symtab || sh.flags & SHF_RELA_LIVEPATCH != 0 {
            continue;
        }
        if sh.kind == SHT_REL {
            // x86_64 modules only use RELA; refuse rather than drop any.
            let d = elf.section_data(i)?;
            for e in d.chunks_exact(16) {
                let s = (u64_at(e, 8)? >> 32) as usize;
                if object_of.get(s).copied().flatten().is_some() {
                    return fail(format!(
                        "SHT_REL section '{}' refers to '{}'; only SHT_RELA is supported",
                        show(elf.section_name(i)?),
                        show(syms[s].name)
                    ));
                }
            }
            continue;
        }
        if sh.kind != SHT_RELA {
            continue;
        }
        let relas = elf.relas(i)?;
        let sec_name = elf.section_name(i)?;
        let mut kept = Vec::new();
        let mut moved = false;
        for rela in relas {
            let s = rela.sym as usize;
            let Some(object) = *object_of.get(s).ok_or_else(|| {
                Error(format!(
                    "relocation section '{}' refers to symbol {s}, which does not exist",
                    show(sec_name)
                ))
            })?
            else {
                rela.write(&mut kept);
                continue;
            };
            let target = sh.info as usize;
            let target_sh = elf.shdrs.get(target).filter(|_| target != 0);
            let target_name = match target_sh {
                Some(_) => elf.section_name(target)?,
                None => return fail(format!("'{}' has no target", show(sec_name))),
            };
            // The core writes these relocations long after loading, into
            // memory that has to still be there.
            if target_sh.is_some_and(|t| t.flags & SHF_ALLOC == 0) {
                return fail(format!(
                    "'{}' is referred to from '{}', which is not loaded into memory",
                    show(syms[s].name),
                    show(target_name)
                ));
            }
            if object != b"vmlinux" && target_name.starts_with(b".init") {
                return fail(format!(
                    "'{}' is referred to from '{}', freed before module relocations are written",
                    show(syms[s].name),
                    show(target_name)
                ));
            }
            let rela = Rela {
                kind: opts.set_type.unwrap_or(rela.kind),
                ..rela
            };
            let group = match groups
                .iter()
                .position(|g| g.object == object && g.target == sh.info)
            {
                Some(g) => &mut groups[g],
                None => {
                    groups.push(Group {
                        object: object.to_vec(),
                        target: sh.info,
                        relas: Vec::new(),
                        count: 0,
                    });
                    groups.last_mut().unwrap()
                }
            };
            rela.write(&mut group.relas);
            group.count += 1;
            moved = true;
        }
        if moved {
            compacted.push((i, kept));
        }
    }

    let mut out = data.to_vec();
    let mut shdrs = elf.shdrs.clone();
    let mut symbols = Vec::new();
    for (i, object) in object_of.iter().enumerate() {
        if object.is_some() {
            let at = syms[i].file_offset + 6;
            out[at..at + 2].copy_from_slice(&SHN_LIVEPATCH.to_le_bytes());
            symbols.push(show(syms[i].name));
        }
    }
    for (i, kept) in compacted {
        let start = usize_of(shdrs[i].offset)?;
        let end = start + usize_of(shdrs[i].size)?;
        out[start..end].fill(0);
        out[start..start + kept.len()].copy_from_slice(&kept);
        shdrs[i].size = kept.len() as u64;
    }

    let mut names = elf.section_data(elf.shstrndx)?.to_vec();
    let existing: Vec<&[u8]> = (1..elf.shdrs.len())
        .map(|i| elf.section_name(i))
        .collect::<Result<_, _>>()?;
    let set_info = match &opts.set_info {
        None => None,
        Some(SectionRef::Index(index)) => Some(*index),
        Some(SectionRef::Name(wanted)) => Some(
            (1..elf.shdrs.len())
                .find(|&i| existing[i - 1] == wanted.as_bytes())
                .ok_or_else(|| Error(format!("--set-info: no section '{wanted}'")))?
                as u32,
        ),
    };
    let mut sections = Vec::new();
    for g in &groups {
        let mut name = RELA_PREFIX.to_vec();
        name.extend_from_slice(&g.object);
        name.push(b'.');
        name.extend_from_slice(elf.section_name(g.target as usize)?);
        if !matches!(parse_rela(&name), Ok(r) if r.object == g.object.as_slice()) {
            return fail(format!("'{}' is not a valid section name", show(&name)));
        }
        if existing.contains(&name.as_slice()) {
            return fail(format!(
                "the module has a section '{}' already",
                show(&name)
            ));
        }
        if opts.misalign {
            // One byte, 8-aligned: the section after it lands at 8k + 1.
            align(&mut out, 8);
            shdrs.push(Shdr {
                name: u32::try_from(names.len()).or_else(|_| fail("section names too long"))?,
                kind: SHT_PROGBITS,
                flags: SHF_ALLOC,
                addr: 0,
                offset: out.len() as u64,
                size: 1,
                link: 0,
                info: 0,
                addralign: 8,
                entsize: 0,
            });
            out.push(0);
            names.extend_from_slice(b".klp_rs_pad\0");
        }
        align(&mut out, 8);
        shdrs.push(Shdr {
            name: u32::try_from(names.len()).or_else(|_| fail("section names too long"))?,
            kind: SHT_RELA,
            // SHF_ALLOC keeps the section in memory for relocations that
            // are written when a patched module loads, later.
            flags: SHF_ALLOC | SHF_INFO_LINK | SHF_RELA_LIVEPATCH,
            addr: 0,
            offset: out.len() as u64,
            size: g.relas.len() as u64,
            link: symtab as u32,
            info: set_info.unwrap_or(g.target),
            addralign: if opts.misalign { 1 } else { 8 },
            entsize: RELA_SIZE as u64,
        });
        out.extend_from_slice(&g.relas);
        names.extend_from_slice(&name);
        names.push(0);
        sections.push((show(&name), g.count));
    }
    if shdrs.len() >= SHN_LORESERVE {
        return fail("too many sections");
    }
    shdrs[elf.shstrndx].offset = out.len() as u64;
    shdrs[elf.shstrndx].size = names.len() as u64;
    out.extend_from_slice(&names);
    align(&mut out, 8);
    let shoff = out.len() as u64;
    for sh in &shdrs {
        sh.write(&mut out);
    }
    out[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
    out[0x3c..0x3e].copy_from_slice(&(shdrs.len() as u16).to_le_bytes());
    Ok(Outcome {
        image: Some(out),
        symbols,
        sections,
    })
}

#[cfg(test)]
mod tests;
