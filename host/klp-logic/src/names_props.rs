//! Property test of the name parsers: names assembled from valid, boundary
//! and broken fields, then mutated, each held to `names_model::check`; and
//! valid fields, formatted, that must parse back to themselves. A fixed-seed
//! generator (no crates) keeps every run the same and failures replayable.

use crate::klp_names::{
    parse_rela, parse_sym, KlpRela, KlpSym, NameError, MAX_OBJECT_NAME, MAX_SYMBOL_NAME,
};
use crate::names_model::check;

/// SplitMix64: tiny, fast, and good enough to spread choices evenly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (the bias is negligible for small `n`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

/// Bytes no name may hold, and the two delimiters, to break fields with.
const BAD: &[u8] = b" ,.\t\n\x00\x7f\x80\xff";

/// Bytes mutations insert: delimiters, digits, signs, and bad bytes.
const MUTANTS: &[u8] = b".,0123456789+- _xklpsymrea\x00\x7f\xff";

/// Pushes `len` printable bytes, none of `not` (those become `_`); dots
/// are made common when allowed, so symbols like `foo.cold` come up often.
/// Eight bytes per draw: long names are most of the test's time.
fn push_name(rng: &mut Rng, out: &mut Vec<u8>, len: usize, not: &[u8]) {
    let dots = !not.contains(&b'.');
    let mut bits = 0;
    for i in 0..len {
        if i % 8 == 0 {
            bits = rng.next();
        }
        let r = (bits >> (i % 8 * 8)) as u8;
        let b = if dots && r < 32 { b'.' } else { b'!' + r % 94 };
        out.push(if not.contains(&b) { b'_' } else { b });
    }
}

/// A length biased to the edges of `1..=max` and just past them; mostly
/// short, as long names cost time and one in 64 probes the bounds enough.
fn field_len(rng: &mut Rng, max: usize) -> usize {
    match rng.below(64) {
        0 => 0,
        1 => 1,
        2 => max - 1,
        3 => max,
        4 => max + 1,
        _ => 1 + rng.below(max.min(16)),
    }
}

/// A length in `1..=max`, mostly short for the same reason.
fn valid_len(rng: &mut Rng, max: usize) -> usize {
    let cap = if rng.one_in(16) { max } else { max.min(16) };
    1 + rng.below(cap)
}

/// A field of up to `max` bytes, sometimes with one bad byte or delimiter.
fn push_field(rng: &mut Rng, out: &mut Vec<u8>, max: usize, not: &[u8]) {
    let start = out.len();
    let len = field_len(rng, max);
    push_name(rng, out, len, not);
    if rng.one_in(6) {
        let at = start + rng.below(out.len() - start + 1);
        out.insert(at, rng.pick(BAD));
    }
}

fn push_object(rng: &mut Rng, out: &mut Vec<u8>) {
    if rng.one_in(4) {
        out.extend_from_slice(rng.pick(&[&b"vmlinux"[..], b"test_klp_mod", b"ext4"]));
    } else {
        push_field(rng, out, MAX_OBJECT_NAME, b",.");
    }
}

fn push_position(rng: &mut Rng, out: &mut Vec<u8>) {
    const ODD: &[&[u8]] = &[
        b"0",
        b"18446744073709551615",
        b"18446744073709551616",
        b"99999999999999999999",
        b"100000000000000000000",
        b"00",
        b"01",
        b"+1",
        b"-1",
        b" 1",
        b"1 ",
        b"0x1",
        b"",
        b"1,2",
    ];
    match rng.below(4) {
        0 => out.extend_from_slice(rng.pick(ODD)),
        1 => {
            for _ in 0..=rng.below(22) {
                out.push(b'0' + rng.below(10) as u8);
            }
        }
        _ => out.extend_from_slice((rng.next() >> rng.below(64)).to_string().as_bytes()),
    }
}

/// A name shaped like one of the two kinds, mostly with its own prefix.
fn structured(rng: &mut Rng, out: &mut Vec<u8>) {
    const PREFIXES: &[&[u8]] = &[
        b".klp.sym",
        b".klp.syms.",
        b".KLP.sym.",
        b"klp.sym.",
        b".klp.rela",
        b".klp.",
        b"",
    ];
    let sym = rng.one_in(2);
    out.extend_from_slice(match rng.below(16) {
        0 => rng.pick(PREFIXES),
        1 if sym => b".klp.rela.",
        1 => b".klp.sym.",
        _ if sym => b".klp.sym.",
        _ => b".klp.rela.",
    });
    push_object(rng, out);
    if !rng.one_in(32) {
        out.push(b'.');
    }
    if sym {
        push_field(rng, out, MAX_SYMBOL_NAME, b",");
        if !rng.one_in(32) {
            out.push(b',');
        }
        push_position(rng, out);
    } else if rng.one_in(2) {
        out.extend_from_slice(rng.pick(&[&b".text"[..], b".text.unlikely", b".rodata", b","]));
    } else {
        push_field(rng, out, 600, b"");
    }
}

/// A few byte-level edits, the kind a fuzzer makes.
fn mutate(rng: &mut Rng, name: &mut Vec<u8>) {
    for _ in 0..=rng.below(3) {
        let at = rng.below(name.len() + 1);
        match rng.below(5) {
            0 => name.insert(at, rng.pick(MUTANTS)),
            1 if at < name.len() => name[at] = rng.pick(MUTANTS),
            2 if at < name.len() => {
                name.remove(at);
            }
            3 => name.truncate(at),
            _ => {
                let piece: &[u8] =
                    rng.pick(&[&b".klp.sym."[..], b".klp.rela.", b"vmlinux", b".", b","]);
                name.splice(at..at, piece.iter().copied());
            }
        }
    }
}

/// Index of an outcome in the tally: 0 for success, then one per error.
fn slot(r: Result<(), NameError>) -> usize {
    match r {
        Ok(()) => 0,
        Err(NameError::Prefix) => 1,
        Err(NameError::Object) => 2,
        Err(NameError::Symbol) => 3,
        Err(NameError::Position) => 4,
        Err(NameError::Section) => 5,
    }
}

#[test]
fn generated_names_match_the_model_and_keep_invariants() {
    let mut rng = Rng(0x6b6c_702d_7273);
    // seen[0] counts parse_sym outcomes, seen[1] parse_rela's.
    let mut seen = [[0u32; 6]; 2];
    // Accepted symbol names with the object, or the symbol, at its longest.
    let mut at_bound = [0u32; 2];
    let mut name = Vec::with_capacity(1024);
    for _ in 0..300_000 {
        name.clear();
        structured(&mut rng, &mut name);
        if rng.one_in(2) {
            mutate(&mut rng, &mut name);
        }
        let (sym, rela) = check(&name);
        if let Ok(s) = sym {
            at_bound[0] += u32::from(s.object.len() == MAX_OBJECT_NAME);
            at_bound[1] += u32::from(s.symbol.len() == MAX_SYMBOL_NAME);
        }
        seen[0][slot(sym.map(drop))] += 1;
        seen[1][slot(rela.map(drop))] += 1;
    }
    // Every path of each parser must have been taken often, or the
    // generator has drifted and the test proves less than it seems to.
    let want = [
        ("sym", [true, true, true, true, true, false]),
        ("rela", [true, true, true, false, false, true]),
    ];
    for ((parser, reachable), counts) in want.iter().zip(seen) {
        for (i, (&r, n)) in reachable.iter().zip(counts).enumerate() {
            assert!(!r || n >= 2_000, "{parser} outcome {i} seen {n} times");
        }
    }
    assert!(at_bound.iter().all(|&n| n >= 100), "bounds: {at_bound:?}");
}

#[test]
fn valid_fields_parse_back_to_themselves() {
    let mut rng = Rng(0x0076_616c_6964);
    let (mut object, mut symbol, mut section) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..50_000 {
        object.clear();
        symbol.clear();
        section.clear();
        let lens = [MAX_OBJECT_NAME, MAX_SYMBOL_NAME, 600].map(|max| valid_len(&mut rng, max));
        push_name(&mut rng, &mut object, lens[0], b",.");
        push_name(&mut rng, &mut symbol, lens[1], b",");
        push_name(&mut rng, &mut section, lens[2], b"");
        let position = rng.next() >> rng.below(64);

        let name = [
            &b".klp.sym."[..],
            &object,
            b".",
            &symbol,
            b",",
            position.to_string().as_bytes(),
        ]
        .concat();
        let want = KlpSym {
            object: &object,
            symbol: &symbol,
            position,
        };
        assert_eq!(parse_sym(&name), Ok(want), "{}", name.escape_ascii());

        let name = [&b".klp.rela."[..], &object, b".", &section].concat();
        let want = KlpRela {
            object: &object,
            section: &section,
        };
        assert_eq!(parse_rela(&name), Ok(want), "{}", name.escape_ascii());
    }
}
