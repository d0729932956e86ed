//! A minimal reader for PyTorch's zip checkpoints (`torch.save`: HF `pytorch_model.bin`, fair-esm
//! `.pt`, bare `state_dict`s such as InterPLM's `ae.pt`, Lightning `.ckpt`). It runs just enough
//! of the pickle machine to rebuild nested dicts, lists, tuples, scalars (int, float, bool, str)
//! and tensors (`_rebuild_tensor_v2` over persistent storages); any other object becomes an
//! [`Value::Object`] that keeps only its class name and the dict items or state it was given.
//! Nothing is imported or executed, so an untrusted checkpoint cannot run code.
//!
//! ```no_run
//! use plmscope_model::pickle::read_torch_zip;
//! let bytes = std::fs::read("ae.pt").unwrap();
//! let ckpt = read_torch_zip(&bytes).unwrap();
//! let k = ckpt.tensor("k").and_then(|t| t.scalar_i64());
//! let hp = ckpt.root.get("hyper_parameters").and_then(|h| h.get("k")).and_then(|v| v.as_i64());
//! # let _ = (k, hp);
//! ```

use std::collections::HashMap;
use std::io::Read;

/// An error reading a torch checkpoint: the archive, the pickle program or a storage is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PickleError(pub String);

/// An unpickled Python value, as far as a checkpoint needs one.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// A dict, items in pickle order (keys need not be strings).
    Dict(Vec<(Value, Value)>),
    /// A class or function reference (`module`, `name`), not resolved.
    Global(String, String),
    Storage {
        dtype: StorageKind,
        key: String,
    },
    Tensor(TensorRef),
    /// An instance of a class we do not rebuild (argparse `Namespace`, Lightning's
    /// `AttributeDict`...): its class, plus the dict items (dict subclasses) or the `__dict__`
    /// state it was built with, so its fields can still be read.
    Object {
        module: String,
        name: String,
        items: Vec<(Value, Value)>,
    },
    /// Bytes, sets, and anything else without a useful reading.
    Opaque,
    /// The pickle MARK; never left in a finished value.
    Mark,
}

impl Value {
    /// The value under string key `key` of a dict (or an object's items).
    pub fn get(&self, key: &str) -> Option<&Value> {
        let items = match self {
            Value::Dict(items) | Value::Object { items, .. } => items,
            _ => return None,
        };
        items
            .iter()
            .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
            .map(|(_, v)| v)
    }

    /// String keys of a dict or object, in order (for error messages).
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Value::Dict(items) | Value::Object { items, .. } => items
                .iter()
                .filter_map(|(k, _)| match k {
                    Value::Str(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// An integer (bools count, as in Python).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    /// A float or integer as f64.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// This value as JSON, for the record (tensors and opaque objects become descriptive strings).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::None | Value::Mark => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Tuple(items) | Value::List(items) => {
                J::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Dict(items) | Value::Object { items, .. } => J::Object(
                items
                    .iter()
                    .map(|(k, v)| {
                        let key = match k {
                            Value::Str(s) => s.clone(),
                            other => format!("{}", other.to_json()),
                        };
                        (key, v.to_json())
                    })
                    .collect(),
            ),
            Value::Global(m, n) => J::String(format!("{m}.{n}")),
            Value::Tensor(t) => J::String(format!("tensor {:?} {:?}", t.dtype, t.shape)),
            Value::Storage { .. } | Value::Opaque => J::String("<opaque>".into()),
        }
    }
}

/// Element type of a torch storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    F32,
    F16,
    BF16,
    F64,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
    /// Complex, quantized or other storages this reader does not convert.
    Other,
}

impl StorageKind {
    fn from_name(name: &str) -> Self {
        match name {
            "FloatStorage" => StorageKind::F32,
            "HalfStorage" => StorageKind::F16,
            "BFloat16Storage" => StorageKind::BF16,
            "DoubleStorage" => StorageKind::F64,
            "LongStorage" => StorageKind::I64,
            "IntStorage" => StorageKind::I32,
            "ShortStorage" => StorageKind::I16,
            "CharStorage" => StorageKind::I8,
            "ByteStorage" => StorageKind::U8,
            "BoolStorage" => StorageKind::Bool,
            _ => StorageKind::Other,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            StorageKind::F64 | StorageKind::I64 => 8,
            StorageKind::F32 | StorageKind::I32 => 4,
            StorageKind::F16 | StorageKind::BF16 | StorageKind::I16 => 2,
            StorageKind::I8 | StorageKind::U8 | StorageKind::Bool | StorageKind::Other => 1,
        }
    }
}

/// A tensor inside the archive: which storage file, its element type, offset (elements),
/// shape and strides.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub dtype: StorageKind,
    pub key: String,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

/// Values of a materialised tensor, by family: floats widen or narrow to f32, integers to i64.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    Float(Vec<f32>),
    Int(Vec<i64>),
    Bool(Vec<bool>),
}

/// A tensor read out of its storage, contiguous and row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// The element type it had in the file.
    pub dtype: StorageKind,
    pub shape: Vec<usize>,
    pub data: TensorData,
}

impl Tensor {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The values as f32 (integers and bools converted).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            TensorData::Float(v) => v.clone(),
            TensorData::Int(v) => v.iter().map(|&i| i as f32).collect(),
            TensorData::Bool(v) => v.iter().map(|&b| b as u8 as f32).collect(),
        }
    }

    /// The value of a one-element integer or bool tensor.
    pub fn scalar_i64(&self) -> Option<i64> {
        match &self.data {
            TensorData::Int(v) if v.len() == 1 => Some(v[0]),
            TensorData::Bool(v) if v.len() == 1 => Some(v[0] as i64),
            _ => None,
        }
    }

    /// The value of a one-element tensor of any family, as f64.
    pub fn scalar_f64(&self) -> Option<f64> {
        match &self.data {
            TensorData::Float(v) if v.len() == 1 => Some(v[0] as f64),
            _ => self.scalar_i64().map(|i| i as f64),
        }
    }

    /// The value of a one-element bool tensor (integers: non-zero is true).
    pub fn scalar_bool(&self) -> Option<bool> {
        match &self.data {
            TensorData::Bool(v) if v.len() == 1 => Some(v[0]),
            TensorData::Int(v) if v.len() == 1 => Some(v[0] != 0),
            _ => None,
        }
    }
}

/// A whole checkpoint: the unpickled root object, and every tensor reachable from it through
/// nested dicts, named by the dotted path of its keys (`state_dict.model.weights.0`).
#[derive(Debug, Clone)]
pub struct TorchCheckpoint {
    pub root: Value,
    /// In pickle order. Tensors of storages this reader cannot convert are left out.
    pub tensors: Vec<(String, Tensor)>,
}

impl TorchCheckpoint {
    /// The tensor at dotted path `name`.
    pub fn tensor(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
}

fn read_exact<'a>(data: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], String> {
    let end = pos.checked_add(n).filter(|&e| e <= data.len());
    let end = end.ok_or_else(|| format!("pickle truncated at byte {}", *pos))?;
    let s = &data[*pos..end];
    *pos = end;
    Ok(s)
}

fn read_array<const N: usize>(data: &[u8], pos: &mut usize) -> Result<[u8; N], String> {
    let mut out = [0u8; N];
    out.copy_from_slice(read_exact(data, pos, N)?);
    Ok(out)
}

/// A newline-terminated argument of the text opcodes (GLOBAL, INT, LONG, FLOAT).
fn read_line(data: &[u8], pos: &mut usize) -> Result<String, String> {
    let rest = data.get(*pos..).unwrap_or(&[]);
    let end = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| format!("unterminated text argument at byte {}", *pos))?;
    let s = String::from_utf8_lossy(&rest[..end]).into_owned();
    *pos += end + 1;
    Ok(s)
}

fn pop_mark(stack: &mut Vec<Value>) -> Result<Vec<Value>, String> {
    let at = stack
        .iter()
        .rposition(|v| matches!(v, Value::Mark))
        .ok_or("pickle MARK missing")?;
    let items = stack.split_off(at + 1);
    stack.pop();
    Ok(items)
}

fn as_usize_list(v: &Value) -> Result<Vec<usize>, String> {
    match v {
        Value::Tuple(items) | Value::List(items) => items
            .iter()
            .map(|i| match i {
                Value::Int(n) if *n >= 0 => Ok(*n as usize),
                other => Err(format!("expected a size, found {other:?}")),
            })
            .collect(),
        other => Err(format!("expected a tuple of sizes, found {other:?}")),
    }
}

/// REDUCE / NEWOBJ: rebuild tensors and ordered dicts; any other class becomes an `Object`.
fn reduce(callable: Value, args: Value) -> Result<Value, String> {
    let (module, name) = match &callable {
        Value::Global(m, n) => (m.as_str(), n.as_str()),
        _ => return Ok(Value::Opaque),
    };
    let args = match args {
        Value::Tuple(a) => a,
        _ => Vec::new(),
    };
    match (module, name) {
        ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => {
            let (dtype, key) = match args.first() {
                Some(Value::Storage { dtype, key }) => (*dtype, key.clone()),
                _ => return Err("tensor without storage".into()),
            };
            let offset = match args.get(1) {
                Some(Value::Int(o)) if *o >= 0 => *o as usize,
                _ => 0,
            };
            let shape = as_usize_list(args.get(2).ok_or("tensor without shape")?)?;
            let stride = as_usize_list(args.get(3).ok_or("tensor without stride")?)?;
            Ok(Value::Tensor(TensorRef {
                dtype,
                key,
                offset,
                shape,
                stride,
            }))
        }
        ("torch._utils", "_rebuild_parameter") | ("torch.nn.parameter", "Parameter") => {
            Ok(args.into_iter().next().unwrap_or(Value::Opaque))
        }
        ("collections", "OrderedDict") | ("builtins", "dict") | ("__builtin__", "dict") => {
            Ok(Value::Dict(Vec::new()))
        }
        // `copyreg._reconstructor(cls, base, state)`: protocol 0/1 objects; the class is cls.
        // `copyreg.__newobj__(cls, *args)`: protocol 2 written by REDUCE; the class is cls.
        ("copyreg", "_reconstructor" | "__newobj__") | ("copy_reg", "_reconstructor") => {
            match args.first() {
                Some(Value::Global(m, n)) => Ok(object(m, n)),
                _ => Ok(Value::Opaque),
            }
        }
        _ => Ok(object(module, name)),
    }
}

fn object(module: &str, name: &str) -> Value {
    Value::Object {
        module: module.to_string(),
        name: name.to_string(),
        items: Vec::new(),
    }
}

/// Appends `(key, value)` pairs to the dict or object on top of the stack (SETITEM(S)).
fn set_items(stack: &mut [Value], pairs: Vec<Value>) {
    if let Some(Value::Dict(d) | Value::Object { items: d, .. }) = stack.last_mut() {
        let mut it = pairs.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.push((k, v));
        }
    }
}

/// Runs the pickle program in `data` and returns the top object.
pub(crate) fn unpickle(data: &[u8]) -> Result<Value, String> {
    let mut stack: Vec<Value> = Vec::new();
    let mut memo: HashMap<u32, Value> = HashMap::new();
    let mut pos = 0usize;
    let pop = |stack: &mut Vec<Value>| {
        stack
            .pop()
            .ok_or_else(|| "pickle stack underflow".to_string())
    };
    loop {
        let [op] = read_array::<1>(data, &mut pos)?;
        match op {
            // PROTO, FRAME: headers only.
            0x80 => {
                read_exact(data, &mut pos, 1)?;
            }
            0x95 => {
                read_exact(data, &mut pos, 8)?;
            }
            b'}' => stack.push(Value::Dict(Vec::new())),
            b']' => stack.push(Value::List(Vec::new())),
            b')' => stack.push(Value::Tuple(Vec::new())),
            b'(' => stack.push(Value::Mark),
            b't' => {
                let items = pop_mark(&mut stack)?;
                stack.push(Value::Tuple(items));
            }
            b'l' => {
                let items = pop_mark(&mut stack)?;
                stack.push(Value::List(items));
            }
            b'd' => {
                let items = pop_mark(&mut stack)?;
                stack.push(Value::Dict(Vec::new()));
                set_items(&mut stack, items);
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if stack.len() < n {
                    return Err("pickle stack underflow".into());
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(Value::Tuple(items));
            }
            b'X' | 0x8c | 0x8d | b'U' | b'T' | b'C' | b'B' | 0x8e => {
                let len = match op {
                    0x8c | b'U' | b'C' => read_array::<1>(data, &mut pos)?[0] as usize,
                    0x8d | 0x8e => u64::from_le_bytes(read_array(data, &mut pos)?) as usize,
                    _ => u32::from_le_bytes(read_array(data, &mut pos)?) as usize,
                };
                let bytes = read_exact(data, &mut pos, len)?;
                if matches!(op, b'C' | b'B' | 0x8e) {
                    stack.push(Value::Opaque);
                } else {
                    stack.push(Value::Str(String::from_utf8_lossy(bytes).into_owned()));
                }
            }
            b'c' => {
                let module = read_line(data, &mut pos)?;
                let name = read_line(data, &mut pos)?;
                stack.push(Value::Global(module, name));
            }
            0x93 => {
                let name = pop(&mut stack)?;
                let module = pop(&mut stack)?;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => stack.push(Value::Global(m, n)),
                    _ => return Err("STACK_GLOBAL without strings".into()),
                }
            }
            b'Q' => {
                let pid = pop(&mut stack)?;
                let storage = match pid {
                    Value::Tuple(items) if items.len() >= 3 => {
                        let dtype = match &items[1] {
                            Value::Global(_, n) => StorageKind::from_name(n),
                            _ => StorageKind::Other,
                        };
                        let key = match &items[2] {
                            Value::Str(k) => k.clone(),
                            other => return Err(format!("storage key {other:?}")),
                        };
                        Value::Storage { dtype, key }
                    }
                    _ => Value::Opaque,
                };
                stack.push(storage);
            }
            // REDUCE and NEWOBJ: callable/class, then its argument tuple.
            b'R' | 0x81 => {
                let args = pop(&mut stack)?;
                let callable = pop(&mut stack)?;
                stack.push(reduce(callable, args)?);
            }
            // BUILD: an object's state (its __dict__, or (dict, slots)) becomes its items.
            b'b' => {
                let state = pop(&mut stack)?;
                let state = match state {
                    Value::Tuple(mut parts) if !parts.is_empty() => parts.swap_remove(0),
                    other => other,
                };
                if let (Some(Value::Object { items, .. }), Value::Dict(fields)) =
                    (stack.last_mut(), state)
                {
                    items.extend(fields);
                }
            }
            b'K' => stack.push(Value::Int(read_array::<1>(data, &mut pos)?[0] as i64)),
            b'M' => stack.push(Value::Int(
                u16::from_le_bytes(read_array(data, &mut pos)?) as i64
            )),
            b'J' => stack.push(Value::Int(
                i32::from_le_bytes(read_array(data, &mut pos)?) as i64
            )),
            0x8a | 0x8b => {
                let n = if op == 0x8a {
                    read_array::<1>(data, &mut pos)?[0] as usize
                } else {
                    u32::from_le_bytes(read_array(data, &mut pos)?) as usize
                };
                let b = read_exact(data, &mut pos, n)?;
                if n > 8 {
                    return Err(format!("integer of {n} bytes does not fit in 64 bits"));
                }
                let mut v: i64 = 0;
                for (i, &byte) in b.iter().enumerate() {
                    v |= (byte as i64) << (8 * i);
                }
                if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n);
                }
                stack.push(Value::Int(v));
            }
            // Protocol 0 text forms: INT (I01/I00 are True/False), LONG, FLOAT.
            b'I' | b'L' => {
                let text = read_line(data, &mut pos)?;
                let text = text.trim_end_matches('L');
                stack.push(match text {
                    "01" => Value::Bool(true),
                    "00" => Value::Bool(false),
                    t => Value::Int(t.parse().map_err(|_| format!("bad INT {t:?}"))?),
                });
            }
            b'F' => {
                let text = read_line(data, &mut pos)?;
                let v = text.parse().map_err(|_| format!("bad FLOAT {text:?}"))?;
                stack.push(Value::Float(v));
            }
            b'G' => stack.push(Value::Float(f64::from_be_bytes(read_array(
                data, &mut pos,
            )?))),
            0x88 => stack.push(Value::Bool(true)),
            0x89 => stack.push(Value::Bool(false)),
            b'N' => stack.push(Value::None),
            b's' => {
                let v = pop(&mut stack)?;
                let k = pop(&mut stack)?;
                set_items(&mut stack, vec![k, v]);
            }
            b'u' => {
                let items = pop_mark(&mut stack)?;
                set_items(&mut stack, items);
            }
            b'a' => {
                let v = pop(&mut stack)?;
                if let Some(Value::List(l)) = stack.last_mut() {
                    l.push(v);
                }
            }
            b'e' => {
                let items = pop_mark(&mut stack)?;
                if let Some(Value::List(l)) = stack.last_mut() {
                    l.extend(items);
                }
            }
            // EMPTY_SET, ADDITEMS, FROZENSET: sets are not needed.
            0x8f => stack.push(Value::Opaque),
            0x90 => {
                pop_mark(&mut stack)?;
            }
            0x91 => {
                pop_mark(&mut stack)?;
                stack.push(Value::Opaque);
            }
            b'q' => {
                let i = read_array::<1>(data, &mut pos)?[0] as u32;
                memo.insert(i, stack.last().cloned().ok_or("underflow")?);
            }
            b'r' => {
                let i = u32::from_le_bytes(read_array(data, &mut pos)?);
                memo.insert(i, stack.last().cloned().ok_or("underflow")?);
            }
            0x94 => {
                let i = memo.len() as u32;
                memo.insert(i, stack.last().cloned().ok_or("underflow")?);
            }
            b'h' => {
                let i = read_array::<1>(data, &mut pos)?[0] as u32;
                stack.push(memo.get(&i).cloned().ok_or("bad memo")?);
            }
            b'j' => {
                let i = u32::from_le_bytes(read_array(data, &mut pos)?);
                stack.push(memo.get(&i).cloned().ok_or("bad memo")?);
            }
            b'.' => return stack.pop().ok_or_else(|| "empty pickle".into()),
            other => {
                return Err(format!(
                    "unsupported pickle opcode 0x{other:02x} at byte {}",
                    pos - 1
                ))
            }
        }
    }
}

/// Reads a zip-format torch checkpoint: its root object and every tensor under nested dicts.
pub fn read_torch_zip(bytes: &[u8]) -> Result<TorchCheckpoint, PickleError> {
    read_checkpoint(bytes).map_err(PickleError)
}

fn read_checkpoint(bytes: &[u8]) -> Result<TorchCheckpoint, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| {
        format!("not a zip-format torch checkpoint ({e}); re-save it with torch>=1.6 `torch.save`")
    })?;
    let pkl_name = (0..archive.len())
        .filter_map(|i| archive.name_for_index(i).map(str::to_string))
        .find(|n| n.ends_with("data.pkl"))
        .ok_or("no data.pkl inside the archive")?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
    let mut pkl = Vec::new();
    archive
        .by_name(&pkl_name)
        .map_err(|e| e.to_string())?
        .read_to_end(&mut pkl)
        .map_err(|e| e.to_string())?;
    let root = unpickle(&pkl).map_err(|e| format!("{pkl_name}: {e}"))?;
    let mut found = Vec::new();
    collect_tensors(&root, String::new(), &mut found);
    let mut tensors = Vec::with_capacity(found.len());
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    for (name, t) in found {
        if t.dtype == StorageKind::Other {
            continue;
        }
        if !storages.contains_key(&t.key) {
            let mut raw = Vec::new();
            archive
                .by_name(&format!("{prefix}data/{}", t.key))
                .map_err(|e| format!("storage {} of {name}: {e}", t.key))?
                .read_to_end(&mut raw)
                .map_err(|e| format!("storage {} of {name}: {e}", t.key))?;
            storages.insert(t.key.clone(), raw);
        }
        let data = gather(&storages[&t.key], &t).map_err(|e| format!("tensor {name}: {e}"))?;
        tensors.push((
            name,
            Tensor {
                dtype: t.dtype,
                shape: t.shape.clone(),
                data,
            },
        ));
    }
    Ok(TorchCheckpoint { root, tensors })
}

/// Every floating tensor in a torch zip checkpoint, by its dotted name inside the nested dicts
/// (`model.layers.0.fc1.weight` for fair-esm's `{"model": state_dict}`), as f32.
pub(crate) fn load_torch_zip(bytes: &[u8]) -> Result<crate::weights::RawTensors, String> {
    let ckpt = read_checkpoint(bytes)?;
    Ok(ckpt
        .tensors
        .into_iter()
        .filter_map(|(name, t)| match t.data {
            TensorData::Float(values) => Some((name, t.shape, values)),
            _ => None,
        })
        .collect())
}

fn collect_tensors(v: &Value, path: String, out: &mut Vec<(String, TensorRef)>) {
    match v {
        Value::Tensor(t) => out.push((path, t.clone())),
        Value::Dict(items) => {
            for (k, val) in items {
                let key = match k {
                    Value::Str(s) => s.clone(),
                    Value::Int(i) => i.to_string(),
                    _ => continue,
                };
                let p = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                collect_tensors(val, p, out);
            }
        }
        _ => {}
    }
}

/// Materialises a strided tensor view as contiguous values of its family.
fn gather(raw: &[u8], t: &TensorRef) -> Result<TensorData, String> {
    let size = t.dtype.size();
    let numel: usize = t.shape.iter().product();
    if t.stride.len() != t.shape.len() {
        return Err(format!(
            "shape {:?} and stride {:?} differ in rank",
            t.shape, t.stride
        ));
    }
    // Element offsets of the view in row-major order.
    let mut offsets = Vec::with_capacity(numel);
    let mut index = vec![0usize; t.shape.len()];
    for _ in 0..numel {
        offsets.push(
            t.offset
                + index
                    .iter()
                    .zip(&t.stride)
                    .map(|(i, s)| i * s)
                    .sum::<usize>(),
        );
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < t.shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    let element = |off: usize| -> Result<&[u8], String> {
        raw.get(off * size..(off + 1) * size)
            .ok_or_else(|| format!("storage {} too short for element {off}", t.key))
    };
    fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&b[..N]);
        out
    }
    let floats = |f: fn(&[u8]) -> f32| -> Result<TensorData, String> {
        let v: Result<Vec<f32>, String> = offsets.iter().map(|&o| element(o).map(f)).collect();
        Ok(TensorData::Float(v?))
    };
    let ints = |f: fn(&[u8]) -> i64| -> Result<TensorData, String> {
        let v: Result<Vec<i64>, String> = offsets.iter().map(|&o| element(o).map(f)).collect();
        Ok(TensorData::Int(v?))
    };
    match t.dtype {
        StorageKind::F32 => floats(|b| f32::from_le_bytes(arr(b))),
        StorageKind::F16 => floats(|b| half::f16::from_le_bytes(arr(b)).to_f32()),
        StorageKind::BF16 => floats(|b| half::bf16::from_le_bytes(arr(b)).to_f32()),
        StorageKind::F64 => floats(|b| f64::from_le_bytes(arr(b)) as f32),
        StorageKind::I64 => ints(|b| i64::from_le_bytes(arr(b))),
        StorageKind::I32 => ints(|b| i32::from_le_bytes(arr(b)) as i64),
        StorageKind::I16 => ints(|b| i16::from_le_bytes(arr(b)) as i64),
        StorageKind::I8 => ints(|b| b[0] as i8 as i64),
        StorageKind::U8 => ints(|b| b[0] as i64),
        StorageKind::Bool => {
            let v: Result<Vec<bool>, String> = offsets
                .iter()
                .map(|&o| element(o).map(|b| b[0] != 0))
                .collect();
            Ok(TensorData::Bool(v?))
        }
        StorageKind::Other => Err("unsupported storage type".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A protocol-2 pickle of `{"k": 4, "lr": 0.5, "on": True, "off": False, "name": "x"}`,
    /// as `pickle.dumps(..., protocol=2)` writes it.
    #[test]
    fn scalars_survive_unpickling() {
        let mut p = vec![0x80, 2, b'}', b'q', 0, b'('];
        let key = |p: &mut Vec<u8>, k: &str| {
            p.push(b'X');
            p.extend((k.len() as u32).to_le_bytes());
            p.extend(k.as_bytes());
        };
        key(&mut p, "k");
        p.extend([b'K', 4]);
        key(&mut p, "lr");
        p.push(b'G');
        p.extend(0.5f64.to_be_bytes());
        key(&mut p, "on");
        p.push(0x88);
        key(&mut p, "off");
        p.push(0x89);
        key(&mut p, "name");
        key(&mut p, "x");
        p.extend([b'u', b'.']);
        let v = unpickle(&p).unwrap();
        assert_eq!(v.get("k").and_then(Value::as_i64), Some(4));
        assert_eq!(v.get("lr").and_then(Value::as_f64), Some(0.5));
        assert_eq!(v.get("on").and_then(Value::as_bool), Some(true));
        assert_eq!(v.get("off").and_then(Value::as_bool), Some(false));
        assert_eq!(v.get("name").and_then(Value::as_str), Some("x"));
        assert_eq!(v.keys(), ["k", "lr", "on", "off", "name"]);
    }

    #[test]
    fn truncated_pickle_is_an_error_not_a_panic() {
        assert!(unpickle(&[0x80, 2, b'J', 1]).is_err());
        assert!(unpickle(b"u").is_err());
    }
}
