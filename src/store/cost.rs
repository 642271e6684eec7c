//! What foreign Automerge data will cost in memory, measured before any of it
//! is decoded or applied (see "Cost limits" in `docs/storage.md`).
//!
//! A sync message carries Automerge chunks: changes, deflated changes and
//! whole documents whose columns may be deflated. A few kilobytes can stand
//! for millions of operations (a run-length encoded column) or megabytes of
//! text (a deflated value column), and Automerge expands all of it as it
//! loads. [`measure`] walks the chunks' column headers instead: it counts
//! operations by reading the run lengths of each operation column, inserted
//! elements (characters of text, items of lists) from the insert column, and
//! value bytes from the value column's length, inflating deflated parts only
//! into a budget that stops at the limit. Nothing it reads grows with the
//! operation count, so refusing a bomb costs about what the frame did.

use std::io::Read;

use crate::error::{Error, Result};
use crate::write::{Edit, NewEntityRef};

/// Limits on what foreign data and local writes may cost; over any of them
/// the input is refused whole and nothing of it is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CostLimits {
    /// Most operations one change may hold.
    pub max_ops_per_change: u64,
    /// Most operations one sync message (or one write, or one bundle
    /// document) may bring.
    pub max_ops_per_message: u64,
    /// Most inserted elements (characters of text, list items) one message
    /// or write may bring.
    pub max_text_chars: u64,
    /// Most bytes of values one message or write may bring, after
    /// decompression.
    pub max_value_bytes: u64,
    /// Most operations a document may hold.
    pub max_document_ops: u64,
}

impl Default for CostLimits {
    fn default() -> Self {
        CostLimits {
            max_ops_per_change: 200_000,
            max_ops_per_message: 200_000,
            max_text_chars: 200_000,
            max_value_bytes: 4 * 1024 * 1024,
            max_document_ops: 200_000,
        }
    }
}

impl CostLimits {
    /// No limits (tools that merge trusted data).
    pub const UNLIMITED: CostLimits = CostLimits {
        max_ops_per_change: u64::MAX,
        max_ops_per_message: u64::MAX,
        max_text_chars: u64::MAX,
        max_value_bytes: u64::MAX,
        max_document_ops: u64::MAX,
    };

    /// Most bytes the chunks of one message may take once inflated: the
    /// values plus up to 64 bytes of column data per operation.
    pub fn max_expanded_bytes(&self) -> u64 {
        self.max_value_bytes
            .saturating_add(self.max_ops_per_message.saturating_mul(64))
    }

    /// Refuse a document that would hold `ops` operations.
    pub fn check_document(&self, id: impl std::fmt::Display, ops: u64) -> Result<()> {
        if ops > self.max_document_ops {
            return Err(Error::LimitExceeded(format!(
                "document {id} would hold {ops} operations; the limit is {}",
                self.max_document_ops
            )));
        }
        Ok(())
    }

    /// Refuse a local write whose strings are over the limits (each character
    /// of a Text field becomes an operation): checked before the write runs.
    pub fn check_strings<'a>(&self, strings: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let (mut chars, mut bytes) = (0u64, 0u64);
        for s in strings {
            chars = chars.saturating_add(s.chars().count() as u64);
            bytes = bytes.saturating_add(s.len() as u64);
        }
        let ops_limit = self.max_text_chars.min(self.max_ops_per_message);
        if chars > ops_limit {
            return Err(Error::LimitExceeded(format!(
                "a write of {chars} characters; the limit is {ops_limit}"
            )));
        }
        if bytes > self.max_value_bytes {
            return Err(Error::LimitExceeded(format!(
                "a write of {bytes} bytes of text; the limit is {}",
                self.max_value_bytes
            )));
        }
        Ok(())
    }
}

/// The strings a new entity writes.
pub(crate) fn new_entity_strings<'a>(new: &NewEntityRef<'a>) -> Vec<&'a str> {
    match new {
        NewEntityRef::Permit(p) => [&p.title, &p.location, &p.work_type, &p.description]
            .into_iter()
            .chain(&p.ppe_requirements)
            .chain(&p.safety_checklist)
            .map(String::as_str)
            .collect(),
        NewEntityRef::IsolationPoint(i) => std::iter::once(&i.description)
            .chain(&i.lock_ids)
            .map(String::as_str)
            .collect(),
        NewEntityRef::Closeout(c) => std::iter::once(&c.notes)
            .chain(&c.checklist)
            .map(String::as_str)
            .collect(),
    }
}

/// The strings some edits write.
pub(crate) fn edit_strings(edits: &[Edit]) -> Vec<&str> {
    let mut out = Vec::new();
    for e in edits {
        match e {
            Edit::SetField { field, value } => out.extend([field.as_str(), value]),
            Edit::SetText { field, text } => out.extend([field.as_str(), text]),
            Edit::SetStatus(s) => out.push(s),
            Edit::AddItem { field, item }
            | Edit::RemoveItem { field, item }
            | Edit::Tick { field, item, .. } => out.extend([field.as_str(), item]),
            Edit::SetFlag { field, .. } => out.push(field),
            Edit::AddGasReading(g) => out.extend([g.gas.as_str(), &g.unit]),
            Edit::AddPhoto(p) => out.extend([p.sha256.as_str(), &p.mime, &p.caption]),
            Edit::Delete => {}
        }
    }
    out
}

/// What some chunks hold, as far as memory goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    /// Operations in change chunks (new to a document unless it has them).
    pub change_ops: u64,
    /// Operations in whole-document chunks (a history the receiver mostly
    /// shares, or a document it does not have yet).
    pub document_ops: u64,
    /// Inserted elements: characters of text and list items.
    pub inserts: u64,
    /// Bytes of values, inflated.
    pub value_bytes: u64,
    /// Bytes of the chunks, inflated.
    pub expanded_bytes: u64,
}

/// Measure the chunks of one message (`data` holds each entry of its change
/// list: one or more concatenated chunks) and refuse it over `limits`.
pub fn measure<'a>(data: impl IntoIterator<Item = &'a [u8]>, limits: &CostLimits) -> Result<Cost> {
    let mut m = Meter {
        limits,
        cost: Cost::default(),
    };
    for entry in data {
        let mut r = Reader::new(entry);
        while !r.is_empty() {
            m.chunk(&mut r)?;
        }
    }
    Ok(m.cost)
}

/// A change from a plain (not deflated) change chunk; `None` for anything
/// else, and for a chunk whose columns claim more operations, characters or
/// value bytes than the default limits allow: automerge walks every claimed
/// operation while parsing (a run of 2^50 in a 100-byte chunk would spin for
/// hours), so the claim is measured first. Parsing holds no more than the
/// bytes; the node's own limits apply again when the change is applied.
pub fn plain_change(bytes: Vec<u8>) -> Option<automerge::Change> {
    if bytes.get(..4) != Some(&MAGIC[..]) || bytes.get(8) != Some(&CHANGE) {
        return None;
    }
    measure([bytes.as_slice()], &CostLimits::default()).ok()?;
    automerge::Change::from_bytes(bytes).ok()
}

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const DOCUMENT: u8 = 0;
const CHANGE: u8 = 1;
const DEFLATED_CHANGE: u8 = 2;

/// Column types (the low three bits of a column spec).
const DELTA: u32 = 3;
const BOOLEAN: u32 = 4;
const STRING: u32 = 5;
const VALUE: u32 = 7;
/// The deflate bit of a column spec.
const DEFLATE: u32 = 0b1000;
/// The id (spec >> 4) of the insert column.
const INSERT_COLUMN: u32 = 3;

fn malformed(what: &str) -> Error {
    Error::InvalidInput(format!("malformed automerge data: {what}"))
}

struct Meter<'l> {
    limits: &'l CostLimits,
    cost: Cost,
}

/// The columns of an operation section: counted entries and bytes.
#[derive(Default)]
struct OpColumns {
    ops: u64,
    inserts: u64,
    value_bytes: u64,
}

impl Meter<'_> {
    fn chunk(&mut self, r: &mut Reader<'_>) -> Result<()> {
        if r.take(4)? != MAGIC {
            return Err(malformed("a chunk without automerge's magic bytes"));
        }
        r.take(4)?; // checksum
        let kind = r.byte()?;
        let len = r.uleb()?;
        let body = r.take(len)?;
        match kind {
            CHANGE => self.expand(len).and_then(|_| self.change(body)),
            DEFLATED_CHANGE => {
                let inflated = self.inflate(body)?;
                self.change(&inflated)
            }
            DOCUMENT => self.expand(len).and_then(|_| self.document(body)),
            other => Err(Error::InvalidInput(format!(
                "automerge chunks of type {other} are not accepted here (only documents and changes)"
            ))),
        }
    }

    /// Count `n` more inflated bytes.
    fn expand(&mut self, n: u64) -> Result<()> {
        self.cost.expanded_bytes = self.cost.expanded_bytes.saturating_add(n);
        let max = self.limits.max_expanded_bytes();
        if self.cost.expanded_bytes > max {
            return Err(Error::LimitExceeded(format!(
                "a message that inflates past {max} bytes"
            )));
        }
        Ok(())
    }

    /// Inflate `data` within what is left of the budget.
    fn inflate(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        let left = self
            .limits
            .max_expanded_bytes()
            .saturating_sub(self.cost.expanded_bytes);
        let mut out = Vec::new();
        flate2::bufread::DeflateDecoder::new(data)
            .take(left.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|_| malformed("a deflated part that does not inflate"))?;
        self.expand(out.len() as u64)?;
        Ok(out)
    }

    /// The body of a change chunk.
    fn change(&mut self, body: &[u8]) -> Result<()> {
        let mut r = Reader::new(body);
        let deps = r.uleb()?;
        r.take(deps.saturating_mul(32))?;
        r.bytes()?; // actor
        r.uleb()?; // seq
        r.uleb()?; // start op
        r.sleb()?; // time
        r.bytes()?; // message
        let others = r.uleb()?;
        for _ in 0..others {
            r.bytes()?;
        }
        let specs = column_specs(&mut r)?;
        let cols = self.op_columns(&mut r, &specs)?;
        if cols.ops > self.limits.max_ops_per_change {
            return Err(Error::LimitExceeded(format!(
                "a change of {} operations; the limit is {}",
                cols.ops, self.limits.max_ops_per_change
            )));
        }
        self.cost.change_ops = self.cost.change_ops.saturating_add(cols.ops);
        self.add(cols)
    }

    /// The body of a document chunk.
    fn document(&mut self, body: &[u8]) -> Result<()> {
        let mut r = Reader::new(body);
        let actors = r.uleb()?;
        for _ in 0..actors {
            r.bytes()?;
        }
        let heads = r.uleb()?;
        r.take(heads.saturating_mul(32))?;
        let change_specs = column_specs(&mut r)?;
        let op_specs = column_specs(&mut r)?;
        for &(spec, len) in &change_specs {
            let data = r.take(len)?;
            if spec & DEFLATE != 0 {
                self.inflate_counted(data)?;
            }
        }
        let cols = self.op_columns(&mut r, &op_specs)?;
        self.cost.document_ops = self.cost.document_ops.saturating_add(cols.ops);
        self.add(cols)
    }

    /// Inflate `data` only to count its bytes (change metadata: messages,
    /// extra bytes), holding none of it.
    fn inflate_counted(&mut self, data: &[u8]) -> Result<()> {
        let left = self
            .limits
            .max_expanded_bytes()
            .saturating_sub(self.cost.expanded_bytes);
        let n = std::io::copy(
            &mut flate2::bufread::DeflateDecoder::new(data).take(left.saturating_add(1)),
            &mut std::io::sink(),
        )
        .map_err(|_| malformed("a deflated column that does not inflate"))?;
        self.expand(n)
    }

    /// Count the operation columns described by `specs`, read from `r`.
    fn op_columns(&mut self, r: &mut Reader<'_>, specs: &[(u32, u64)]) -> Result<OpColumns> {
        let mut cols = OpColumns::default();
        for &(spec, len) in specs {
            let raw = r.take(len)?;
            let kind = spec & 0b111;
            let inflated;
            let data = if spec & DEFLATE != 0 {
                if kind == VALUE {
                    // values only count by their length: hold none of them
                    let before = self.cost.expanded_bytes;
                    self.inflate_counted(raw)?;
                    cols.value_bytes += self.cost.expanded_bytes - before;
                    continue;
                }
                inflated = self.inflate(raw)?;
                inflated.as_slice()
            } else {
                raw
            };
            match kind {
                VALUE => cols.value_bytes = cols.value_bytes.saturating_add(data.len() as u64),
                BOOLEAN => {
                    let (total, trues) = count_booleans(data)?;
                    cols.ops = cols.ops.max(total);
                    if spec >> 4 == INSERT_COLUMN {
                        cols.inserts = cols.inserts.saturating_add(trues);
                    }
                }
                _ => cols.ops = cols.ops.max(count_rle(data, kind)?),
            }
        }
        Ok(cols)
    }

    /// Add an operation section's counts and check the message's totals.
    fn add(&mut self, cols: OpColumns) -> Result<()> {
        let c = &mut self.cost;
        c.inserts = c.inserts.saturating_add(cols.inserts);
        c.value_bytes = c.value_bytes.saturating_add(cols.value_bytes);
        let ops = c.change_ops.saturating_add(c.document_ops);
        let l = self.limits;
        if ops > l.max_ops_per_message {
            return Err(Error::LimitExceeded(format!(
                "a message of more than {ops} operations; the limit is {}",
                l.max_ops_per_message
            )));
        }
        if c.inserts > l.max_text_chars {
            return Err(Error::LimitExceeded(format!(
                "a message inserting more than {} characters or items; the limit is {}",
                c.inserts, l.max_text_chars
            )));
        }
        if c.value_bytes > l.max_value_bytes {
            return Err(Error::LimitExceeded(format!(
                "a message of more than {} bytes of values; the limit is {}",
                c.value_bytes, l.max_value_bytes
            )));
        }
        Ok(())
    }
}

/// A column section header: how many columns, then (spec, length) each.
fn column_specs(r: &mut Reader<'_>) -> Result<Vec<(u32, u64)>> {
    let n = r.uleb()?;
    if n > 64 {
        return Err(malformed("more than 64 columns"));
    }
    let mut specs = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let spec = u32::try_from(r.uleb()?).map_err(|_| malformed("a column spec"))?;
        specs.push((spec, r.uleb()?));
    }
    Ok(specs)
}

/// Entries of a boolean column (alternating run lengths, false first) and
/// how many of them are true.
fn count_booleans(data: &[u8]) -> Result<(u64, u64)> {
    let mut r = Reader::new(data);
    let (mut total, mut trues, mut value) = (0u64, 0u64, false);
    while !r.is_empty() {
        let run = r.uleb()?;
        total = total.saturating_add(run);
        if value {
            trues = trues.saturating_add(run);
        }
        value = !value;
    }
    Ok((total, trues))
}

/// Entries of a run-length encoded column: runs of one value (a positive
/// count), literal runs (a negative count), runs of nulls (zero, then a count).
fn count_rle(data: &[u8], kind: u32) -> Result<u64> {
    let mut r = Reader::new(data);
    let mut total = 0u64;
    while !r.is_empty() {
        let count = r.sleb()?;
        match count {
            0 => total = total.saturating_add(r.uleb()?),
            n if n > 0 => {
                total = total.saturating_add(n.unsigned_abs());
                skip_value(&mut r, kind)?;
            }
            n => {
                let n = n.unsigned_abs();
                total = total.saturating_add(n);
                for _ in 0..n {
                    skip_value(&mut r, kind)?;
                }
            }
        }
    }
    Ok(total)
}

fn skip_value(r: &mut Reader<'_>, kind: u32) -> Result<()> {
    match kind {
        STRING => r.bytes().map(drop),
        DELTA => r.sleb().map(drop),
        _ => r.uleb().map(drop),
    }
}

/// A cursor over bytes; every read fails cleanly past the end.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let n = usize::try_from(n).map_err(|_| malformed("a length past the end"))?;
        if n > self.buf.len() {
            return Err(malformed("a length past the end"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    /// A length-prefixed byte string.
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.uleb()?;
        self.take(n)
    }

    fn uleb(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed("an over-long number"))
    }

    fn sleb(&mut self) -> Result<i64> {
        let mut value = 0i64;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            if shift < 64 {
                value |= i64::from(b & 0x7f) << shift;
            }
            shift += 7;
            if b & 0x80 == 0 {
                if shift < 64 && b & 0x40 != 0 {
                    value |= -1i64 << shift;
                }
                return Ok(value);
            }
            if shift > 70 {
                return Err(malformed("an over-long number"));
            }
        }
    }
}
