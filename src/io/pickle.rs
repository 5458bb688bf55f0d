//! A strict reader for the part of Python's pickle format (protocol 2) that a
//! legacy `torch.save` of a state dict writes; `torch_pth` reads the file around it.
//!
//! Why a reader of our own, and why so strict: the field-standard reader is
//! Python's `pickle`, and unpickling calls whatever callables the stream names
//! (GLOBAL + REDUCE), so loading a downloaded `.pth` with it runs arbitrary code.
//! This reader runs nothing. It builds plain values, accepts GLOBAL only for the
//! few names a state dict needs ([`Global`]), turns REDUCE of those into data
//! (an empty `OrderedDict`, an unevaluated tensor-rebuild record), and refuses
//! every other opcode and name, saying which and at which byte. The Rust crates
//! were checked first: serde-pickle 1.2 refuses BINPERSID, which every torch
//! storage reference uses; pytorch-reader 0.22 reads these files but keeps dicts
//! as hash maps (the state dict's order is lost) and its truncation errors name
//! storage keys rather than tensors.
//!
//! Resources: every opcode consumes at least one byte of input and adds O(1)
//! values (the memo shares tuples and strings instead of copying them, and
//! refuses to repeat dicts and lists, which torch never repeats), lengths are
//! checked against the bytes left before anything is allocated, and nesting is
//! capped at [`MAX_DEPTH`]; so a hostile stream costs memory in proportion to its
//! length and cannot overflow the stack when its values are dropped.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::rc::Rc;

/// Deepest nesting of tuples, lists and dicts accepted (a state dict needs 4).
pub const MAX_DEPTH: usize = 32;

/// A value of the stream. Containers keep their items in stream order.
#[derive(Clone, Debug)]
pub enum Value {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(Rc<str>),
    Tuple(Rc<[Value]>),
    List(Vec<Value>),
    /// A dict or `OrderedDict`: (key, value) pairs in insertion order.
    Dict(Vec<(Value, Value)>),
    Global(Global),
    /// BINPERSID's argument: a reference to data outside the pickle, for the caller to resolve.
    PersistentId(Rc<Value>),
    /// `torch._utils._rebuild_tensor_v2(*args)`, not called: the caller reads the arguments.
    RebuildTensor(Rc<[Value]>),
}

impl Value {
    /// What kind of value this is, for error messages (never the value itself,
    /// which may be large).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "class or function",
            Value::PersistentId(_) => "persistent id",
            Value::RebuildTensor(_) => "tensor",
        }
    }
}

/// The only names GLOBAL may bring in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Global {
    /// `collections.OrderedDict`: REDUCE with `()` makes an empty dict.
    OrderedDict,
    /// `torch._utils._rebuild_tensor_v2`: REDUCE makes a [`Value::RebuildTensor`].
    RebuildTensorV2,
    /// `torch.FloatStorage` etc., named inside storage persistent ids.
    Storage(StorageType),
}

impl Global {
    fn named(module: &str, name: &str) -> Option<Global> {
        match (module, name) {
            ("collections", "OrderedDict") => Some(Global::OrderedDict),
            ("torch._utils", "_rebuild_tensor_v2") => Some(Global::RebuildTensorV2),
            ("torch", class) => StorageType::ALL.into_iter().find(|t| t.class_name() == class).map(Global::Storage),
            _ => None,
        }
    }
}

/// The typed storages of legacy torch files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageType {
    Float,
    Half,
    BFloat16,
    Double,
    Long,
    Int,
    Short,
    Char,
    Byte,
    Bool,
}

impl StorageType {
    const ALL: [StorageType; 10] = [
        StorageType::Float,
        StorageType::Half,
        StorageType::BFloat16,
        StorageType::Double,
        StorageType::Long,
        StorageType::Int,
        StorageType::Short,
        StorageType::Char,
        StorageType::Byte,
        StorageType::Bool,
    ];

    /// The class name in module `torch` (`FloatStorage`).
    pub fn class_name(self) -> &'static str {
        match self {
            StorageType::Float => "FloatStorage",
            StorageType::Half => "HalfStorage",
            StorageType::BFloat16 => "BFloat16Storage",
            StorageType::Double => "DoubleStorage",
            StorageType::Long => "LongStorage",
            StorageType::Int => "IntStorage",
            StorageType::Short => "ShortStorage",
            StorageType::Char => "CharStorage",
            StorageType::Byte => "ByteStorage",
            StorageType::Bool => "BoolStorage",
        }
    }

    /// The element type's torch name (`float32`).
    pub fn dtype(self) -> &'static str {
        match self {
            StorageType::Float => "float32",
            StorageType::Half => "float16",
            StorageType::BFloat16 => "bfloat16",
            StorageType::Double => "float64",
            StorageType::Long => "int64",
            StorageType::Int => "int32",
            StorageType::Short => "int16",
            StorageType::Char => "int8",
            StorageType::Byte => "uint8",
            StorageType::Bool => "bool",
        }
    }

    pub fn element_size(self) -> usize {
        match self {
            StorageType::Double | StorageType::Long => 8,
            StorageType::Float | StorageType::Int => 4,
            StorageType::Half | StorageType::BFloat16 | StorageType::Short => 2,
            StorageType::Char | StorageType::Byte | StorageType::Bool => 1,
        }
    }
}

// The opcodes read (pickletools' names); every other byte is refused.
const MARK: u8 = b'(';
const STOP: u8 = b'.';
const GLOBAL: u8 = b'c';
const BINPUT: u8 = b'q';
const LONG_BINPUT: u8 = b'r';
const BINGET: u8 = b'h';
const LONG_BINGET: u8 = b'j';
const EMPTY_TUPLE: u8 = b')';
const TUPLE: u8 = b't';
const EMPTY_LIST: u8 = b']';
const APPEND: u8 = b'a';
const APPENDS: u8 = b'e';
const EMPTY_DICT: u8 = b'}';
const SETITEM: u8 = b's';
const SETITEMS: u8 = b'u';
const BININT: u8 = b'J';
const BININT1: u8 = b'K';
const BININT2: u8 = b'M';
const BINFLOAT: u8 = b'G';
const NONE: u8 = b'N';
const BINSTRING: u8 = b'T';
const SHORT_BINSTRING: u8 = b'U';
const BINUNICODE: u8 = b'X';
const REDUCE: u8 = b'R';
const BUILD: u8 = b'b';
const BINPERSID: u8 = b'Q';
const PROTO: u8 = 0x80;
const TUPLE1: u8 = 0x85;
const TUPLE2: u8 = 0x86;
const TUPLE3: u8 = 0x87;
const NEWTRUE: u8 = 0x88;
const NEWFALSE: u8 = 0x89;
const LONG1: u8 = 0x8a;

/// Reads one pickle that starts at byte `start` of `data`. Returns its value and
/// the byte after its STOP. Errors give absolute byte offsets in `data`.
pub fn load(data: &[u8], start: usize) -> Result<(Value, usize)> {
    Machine { data, pos: start, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new() }.run()
}

/// A stack entry: a value and the depth of its nesting (0 for scalars).
struct Item {
    value: Value,
    depth: usize,
}

/// What a memo slot holds: a shareable value, or the note that it was a dict or list.
enum Memo {
    Shared(Value, usize),
    Mutable(&'static str),
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Item>,
    /// Stack lengths at each open MARK.
    marks: Vec<usize>,
    memo: HashMap<u32, Memo>,
}

impl<'a> Machine<'a> {
    fn run(mut self) -> Result<(Value, usize)> {
        loop {
            let at = self.pos;
            let op = self.bytes(1, "an opcode")?[0];
            let bad = |what: String| Error::Invalid(format!("pickle opcode {} at byte {at}: {what}", describe(op)));
            match op {
                PROTO => {
                    let version = self.bytes(1, "the protocol version")?[0];
                    if version != 2 {
                        return Err(bad(format!("protocol {version}; legacy torch files use protocol 2")));
                    }
                }
                STOP => {
                    if !self.marks.is_empty() || self.stack.len() != 1 {
                        return Err(bad(format!(
                            "the stream ends with {} values and {} open MARKs, expected one value",
                            self.stack.len(),
                            self.marks.len()
                        )));
                    }
                    let item = self.stack.pop().expect("one value on the stack");
                    return Ok((item.value, self.pos));
                }
                MARK => self.marks.push(self.stack.len()),
                GLOBAL => {
                    let module = self.line("the module of a GLOBAL")?;
                    let name = self.line("the name of a GLOBAL")?;
                    let global = Global::named(module, name).ok_or_else(|| {
                        bad(format!(
                            "'{module}.{name}' is not allowed: a pickle can name any Python callable, so only \
                             collections.OrderedDict, torch._utils._rebuild_tensor_v2 and torch.*Storage are read"
                        ))
                    })?;
                    self.push(Value::Global(global), 0);
                }
                BINPUT => {
                    let slot = self.bytes(1, "a memo index")?[0] as u32;
                    self.memoize(slot).map_err(bad)?;
                }
                LONG_BINPUT => {
                    let slot = self.u32_le("a memo index")?;
                    self.memoize(slot).map_err(bad)?;
                }
                BINGET => {
                    let slot = self.bytes(1, "a memo index")?[0] as u32;
                    self.recall(slot).map_err(bad)?;
                }
                LONG_BINGET => {
                    let slot = self.u32_le("a memo index")?;
                    self.recall(slot).map_err(bad)?;
                }
                EMPTY_TUPLE => self.push(Value::Tuple(Rc::from([])), 1),
                TUPLE => {
                    let items = self.pop_to_mark().map_err(bad)?;
                    self.push_tuple(items).map_err(bad)?;
                }
                TUPLE1 | TUPLE2 | TUPLE3 => {
                    let n = (op - TUPLE1 + 1) as usize;
                    let items = self.pop_n(n).map_err(bad)?;
                    self.push_tuple(items).map_err(bad)?;
                }
                EMPTY_LIST => self.push(Value::List(Vec::new()), 1),
                APPEND => {
                    let items = self.pop_n(1).map_err(bad)?;
                    self.extend_top(items, false).map_err(bad)?;
                }
                APPENDS => {
                    let items = self.pop_to_mark().map_err(bad)?;
                    self.extend_top(items, false).map_err(bad)?;
                }
                EMPTY_DICT => self.push(Value::Dict(Vec::new()), 1),
                SETITEM => {
                    let items = self.pop_n(2).map_err(bad)?;
                    self.extend_top(items, true).map_err(bad)?;
                }
                SETITEMS => {
                    let items = self.pop_to_mark().map_err(bad)?;
                    self.extend_top(items, true).map_err(bad)?;
                }
                BININT => {
                    let b = self.bytes(4, "a BININT")?;
                    self.push(Value::Int(i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i128), 0);
                }
                BININT1 => {
                    let b = self.bytes(1, "a BININT1")?[0];
                    self.push(Value::Int(b as i128), 0);
                }
                BININT2 => {
                    let b = self.bytes(2, "a BININT2")?;
                    self.push(Value::Int(u16::from_le_bytes([b[0], b[1]]) as i128), 0);
                }
                LONG1 => {
                    let n = self.bytes(1, "the length of a LONG1")?[0] as usize;
                    if n > 16 {
                        return Err(bad(format!("a {n}-byte integer (at most 16 bytes are read)")));
                    }
                    let b = self.bytes(n, "a LONG1")?;
                    // Little-endian two's complement, sign-extended to 128 bits.
                    let fill = if b.last().is_some_and(|&x| x & 0x80 != 0) { 0xff } else { 0 };
                    let mut full = [fill; 16];
                    full[..n].copy_from_slice(b);
                    self.push(Value::Int(i128::from_le_bytes(full)), 0);
                }
                BINFLOAT => {
                    let b = self.bytes(8, "a BINFLOAT")?;
                    self.push(Value::Float(f64::from_be_bytes(b.try_into().expect("8 bytes"))), 0);
                }
                NONE => self.push(Value::None, 0),
                NEWTRUE => self.push(Value::Bool(true), 0),
                NEWFALSE => self.push(Value::Bool(false), 0),
                BINUNICODE => {
                    let len = self.u32_le("the length of a BINUNICODE")? as usize;
                    let s = self.text(len, "a BINUNICODE")?;
                    self.push(Value::Str(s), 0);
                }
                SHORT_BINSTRING => {
                    let len = self.bytes(1, "the length of a SHORT_BINSTRING")?[0] as usize;
                    let s = self.text(len, "a SHORT_BINSTRING")?;
                    self.push(Value::Str(s), 0);
                }
                BINSTRING => {
                    let len = self.u32_le("the length of a BINSTRING")?;
                    if len > i32::MAX as u32 {
                        return Err(bad("a negative length".into()));
                    }
                    let s = self.text(len as usize, "a BINSTRING")?;
                    self.push(Value::Str(s), 0);
                }
                REDUCE => {
                    let mut pair = self.pop_n(2).map_err(bad)?;
                    let args = pair.pop().expect("two items");
                    let func = pair.pop().expect("two items");
                    let Value::Tuple(items) = args.value else {
                        return Err(bad(format!("the arguments are a {}, not a tuple", args.value.kind())));
                    };
                    match func.value {
                        Value::Global(Global::OrderedDict) if items.is_empty() => self.push(Value::Dict(Vec::new()), 1),
                        Value::Global(Global::RebuildTensorV2) => self.push(Value::RebuildTensor(items), args.depth),
                        other => {
                            return Err(bad(format!(
                                "calls a {} with {} arguments; only OrderedDict() and _rebuild_tensor_v2(...) are read",
                                other.kind(),
                                items.len()
                            )));
                        }
                    }
                }
                BUILD => {
                    // A state dict is an OrderedDict whose instance attributes (`_metadata`: module
                    // version numbers) BUILD sets; they describe no weights and are dropped.
                    let state = self.pop_n(1).map_err(bad)?.pop().expect("one item");
                    match (self.stack.last().map(|i| &i.value), &state.value) {
                        (Some(Value::Dict(_)), Value::Dict(_)) if self.marks.last() != Some(&self.stack.len()) => {}
                        (obj, _) => {
                            return Err(bad(format!(
                                "sets the state of a {} from a {}; only a dict's attributes are accepted",
                                obj.map_or("nothing", Value::kind),
                                state.value.kind()
                            )));
                        }
                    }
                }
                BINPERSID => {
                    let pid = self.pop_n(1).map_err(bad)?.pop().expect("one item");
                    let depth = pid.depth + 1;
                    self.push_checked(Value::PersistentId(Rc::new(pid.value)), depth).map_err(bad)?;
                }
                _ => return Err(bad("this opcode is not part of the legacy torch.save subset read here".into())),
            }
        }
    }

    /// The next `n` bytes, or an error saying the stream is cut short.
    fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let left = self.data.len() - self.pos;
        if n > left {
            return Err(Error::Invalid(format!(
                "truncated: {what} needs {n} bytes at byte {} but the data ends at byte {}",
                self.pos,
                self.data.len()
            )));
        }
        let b = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    fn u32_le(&mut self, what: &str) -> Result<u32> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn text(&mut self, len: usize, what: &str) -> Result<Rc<str>> {
        let at = self.pos;
        let b = self.bytes(len, what)?;
        std::str::from_utf8(b)
            .map(Rc::from)
            .map_err(|e| Error::Invalid(format!("{what} at byte {at} is not UTF-8: {e}")))
    }

    /// A newline-terminated ASCII line (GLOBAL's arguments).
    fn line(&mut self, what: &str) -> Result<&'a str> {
        let at = self.pos;
        let rest = &self.data[self.pos..];
        let end = rest.iter().position(|&b| b == b'\n').ok_or_else(|| {
            Error::Invalid(format!("truncated: {what} at byte {at} has no end of line before the data ends"))
        })?;
        self.pos += end + 1;
        std::str::from_utf8(&rest[..end])
            .ok()
            .filter(|s| s.is_ascii())
            .ok_or_else(|| Error::Invalid(format!("{what} at byte {at} is not ASCII")))
    }

    fn push(&mut self, value: Value, depth: usize) {
        self.stack.push(Item { value, depth });
    }

    fn push_checked(&mut self, value: Value, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("values nest deeper than {MAX_DEPTH} levels"));
        }
        self.push(value, depth);
        Ok(())
    }

    fn push_tuple(&mut self, items: Vec<Item>) -> Result<(), String> {
        let depth = 1 + items.iter().map(|i| i.depth).max().unwrap_or(0);
        let values: Rc<[Value]> = items.into_iter().map(|i| i.value).collect();
        self.push_checked(Value::Tuple(values), depth)
    }

    /// The top `n` items, oldest first; never reaching below the last MARK.
    fn pop_n(&mut self, n: usize) -> Result<Vec<Item>, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() < floor + n {
            return Err(format!(
                "needs {n} values but the stack holds {} since the last MARK",
                self.stack.len() - floor
            ));
        }
        Ok(self.stack.split_off(self.stack.len() - n))
    }

    fn pop_to_mark(&mut self) -> Result<Vec<Item>, String> {
        let mark = self.marks.pop().ok_or("there is no MARK to pop to")?;
        Ok(self.stack.split_off(mark))
    }

    /// Appends `items` to the list on top of the stack (`pairs`: key/value pairs to its dict).
    fn extend_top(&mut self, items: Vec<Item>, pairs: bool) -> Result<(), String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        let added = items.iter().map(|i| i.depth + 1).max().unwrap_or(0);
        let above_mark = self.stack.len() > floor;
        let top = self.stack.last_mut().filter(|_| above_mark).ok_or("there is no container on the stack")?;
        if added > MAX_DEPTH {
            return Err(format!("values nest deeper than {MAX_DEPTH} levels"));
        }
        top.depth = top.depth.max(added);
        match (&mut top.value, pairs) {
            (Value::List(list), false) => list.extend(items.into_iter().map(|i| i.value)),
            (Value::Dict(dict), true) => {
                if !items.len().is_multiple_of(2) {
                    return Err(format!("{} items do not make key/value pairs", items.len()));
                }
                let mut it = items.into_iter().map(|i| i.value);
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    dict.push((k, v));
                }
            }
            (other, _) => {
                let want = if pairs { "dict" } else { "list" };
                return Err(format!("adds items to a {}, not a {want}", other.kind()));
            }
        }
        Ok(())
    }

    fn memoize(&mut self, slot: u32) -> Result<(), String> {
        let top = self.stack.last().filter(|_| self.marks.last() != Some(&self.stack.len()));
        let top = top.ok_or("there is no value to memoize")?;
        let entry = match &top.value {
            Value::List(_) => Memo::Mutable("list"),
            Value::Dict(_) => Memo::Mutable("dict"),
            v => Memo::Shared(v.clone(), top.depth),
        };
        self.memo.insert(slot, entry);
        Ok(())
    }

    fn recall(&mut self, slot: u32) -> Result<(), String> {
        match self.memo.get(&slot) {
            Some(Memo::Shared(v, depth)) => {
                let (v, depth) = (v.clone(), *depth);
                self.push(v, depth);
                Ok(())
            }
            Some(Memo::Mutable(kind)) => {
                Err(format!("memo {slot} is a {kind}; a {kind} shared between two places is not supported"))
            }
            None => Err(format!("memo {slot} was never set")),
        }
    }
}

/// The opcode's byte, and its character when printable.
fn describe(op: u8) -> String {
    if op.is_ascii_graphic() { format!("0x{op:02x} ('{}')", op as char) } else { format!("0x{op:02x}") }
}
