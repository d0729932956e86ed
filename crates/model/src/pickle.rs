//! A minimal reader for PyTorch's zip checkpoints (`torch.save`: HF `pytorch_model.bin`, fair-esm
//! `.pt`). It runs just enough of the pickle machine to find tensors (`_rebuild_tensor_v2` over
//! persistent storages) inside nested dicts; every other object becomes opaque. Nothing is
//! executed, so an untrusted checkpoint cannot run code.

use std::collections::HashMap;
use std::io::Read;

#[derive(Debug, Clone)]
pub enum Value {
    None,
    Int(i64),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String, String),
    Storage { dtype: StorageKind, key: String },
    Tensor(TensorRef),
    Opaque,
    Mark,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    F32,
    F16,
    BF16,
    F64,
    I64,
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
            _ => StorageKind::Other,
        }
    }
    pub fn size(self) -> usize {
        match self {
            StorageKind::F32 => 4,
            StorageKind::F16 | StorageKind::BF16 => 2,
            StorageKind::F64 | StorageKind::I64 => 8,
            StorageKind::Other => 1,
        }
    }
}

/// A tensor inside the archive: which storage file, its element type, offset (elements),
/// shape and strides.
#[derive(Debug, Clone)]
pub struct TensorRef {
    pub dtype: StorageKind,
    pub key: String,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

fn read_exact<'a>(data: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], String> {
    let end = pos.checked_add(n).filter(|&e| e <= data.len());
    let end = end.ok_or_else(|| format!("pickle truncated at byte {}", *pos))?;
    let s = &data[*pos..end];
    *pos = end;
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

fn reduce(callable: Value, args: Value) -> Result<Value, String> {
    let args = match args {
        Value::Tuple(a) => a,
        _ => return Ok(Value::Opaque),
    };
    let (module, name) = match &callable {
        Value::Global(m, n) => (m.as_str(), n.as_str()),
        _ => return Ok(Value::Opaque),
    };
    match (module, name) {
        ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => {
            let (dtype, key) = match args.first() {
                Some(Value::Storage { dtype, key }) => (*dtype, key.clone()),
                _ => return Err("tensor without storage".into()),
            };
            let offset = match args.get(1) {
                Some(Value::Int(o)) => *o as usize,
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
        ("collections", "OrderedDict") => Ok(Value::Dict(Vec::new())),
        _ => Ok(Value::Opaque),
    }
}

/// Runs the pickle program in `data` and returns the top object.
pub fn unpickle(data: &[u8]) -> Result<Value, String> {
    let mut stack: Vec<Value> = Vec::new();
    let mut memo: HashMap<u32, Value> = HashMap::new();
    let mut pos = 0usize;
    loop {
        let op = *read_exact(data, &mut pos, 1)?.first().ok_or("empty")?;
        match op {
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
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if stack.len() < n {
                    return Err("pickle stack underflow".into());
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(Value::Tuple(items));
            }
            b'X' | 0x8c | 0x8d | b'U' | b'T' | b'C' | b'B' => {
                let len = match op {
                    0x8c | b'U' | b'C' => read_exact(data, &mut pos, 1)?[0] as usize,
                    0x8d => u64::from_le_bytes(read_exact(data, &mut pos, 8)?.try_into().unwrap())
                        as usize,
                    _ => u32::from_le_bytes(read_exact(data, &mut pos, 4)?.try_into().unwrap())
                        as usize,
                };
                let bytes = read_exact(data, &mut pos, len)?;
                if matches!(op, b'C' | b'B') {
                    stack.push(Value::Opaque);
                } else {
                    stack.push(Value::Str(String::from_utf8_lossy(bytes).into_owned()));
                }
            }
            b'c' => {
                let mut line = || -> Result<String, String> {
                    let rest = &data[pos..];
                    let end = rest.iter().position(|&b| b == b'\n').ok_or("bad GLOBAL")?;
                    let s = String::from_utf8_lossy(&rest[..end]).into_owned();
                    pos += end + 1;
                    Ok(s)
                };
                let module = line()?;
                let name = line()?;
                stack.push(Value::Global(module, name));
            }
            0x93 => {
                let name = stack.pop().ok_or("underflow")?;
                let module = stack.pop().ok_or("underflow")?;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => stack.push(Value::Global(m, n)),
                    _ => return Err("STACK_GLOBAL without strings".into()),
                }
            }
            b'Q' => {
                let pid = stack.pop().ok_or("underflow")?;
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
            b'R' => {
                let args = stack.pop().ok_or("underflow")?;
                let callable = stack.pop().ok_or("underflow")?;
                stack.push(reduce(callable, args)?);
            }
            0x81 => {
                stack.pop();
                stack.pop();
                stack.push(Value::Opaque);
            }
            b'b' => {
                let state = stack.pop().ok_or("underflow")?;
                // A dict subclass built from its state (rare); otherwise the object stays.
                if let (Some(Value::Opaque), Value::Dict(_)) = (stack.last(), &state) {
                    *stack.last_mut().unwrap() = Value::Opaque;
                }
            }
            b'K' => stack.push(Value::Int(read_exact(data, &mut pos, 1)?[0] as i64)),
            b'M' => {
                let b = read_exact(data, &mut pos, 2)?;
                stack.push(Value::Int(u16::from_le_bytes([b[0], b[1]]) as i64));
            }
            b'J' => {
                let b = read_exact(data, &mut pos, 4)?;
                stack.push(Value::Int(i32::from_le_bytes(b.try_into().unwrap()) as i64));
            }
            0x8a => {
                let n = read_exact(data, &mut pos, 1)?[0] as usize;
                let b = read_exact(data, &mut pos, n)?;
                let mut v: i64 = 0;
                for (i, &byte) in b.iter().enumerate().take(8) {
                    v |= (byte as i64) << (8 * i);
                }
                if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n);
                }
                stack.push(Value::Int(v));
            }
            b'G' => {
                let b = read_exact(data, &mut pos, 8)?;
                let _ = b;
                stack.push(Value::Opaque);
            }
            0x88 | 0x89 => stack.push(Value::Opaque),
            b'N' => stack.push(Value::None),
            b's' => {
                let v = stack.pop().ok_or("underflow")?;
                let k = stack.pop().ok_or("underflow")?;
                if let Some(Value::Dict(d)) = stack.last_mut() {
                    d.push((k, v));
                }
            }
            b'u' => {
                let items = pop_mark(&mut stack)?;
                if let Some(Value::Dict(d)) = stack.last_mut() {
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        d.push((k, v));
                    }
                }
            }
            b'a' => {
                let v = stack.pop().ok_or("underflow")?;
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
            0x8f => stack.push(Value::Opaque),
            0x90 => {
                pop_mark(&mut stack)?;
            }
            0x91 => {
                pop_mark(&mut stack)?;
                stack.push(Value::Opaque);
            }
            b'q' => {
                let i = read_exact(data, &mut pos, 1)?[0] as u32;
                memo.insert(i, stack.last().cloned().ok_or("underflow")?);
            }
            b'r' => {
                let i = u32::from_le_bytes(read_exact(data, &mut pos, 4)?.try_into().unwrap());
                memo.insert(i, stack.last().cloned().ok_or("underflow")?);
            }
            0x94 => {
                let i = memo.len() as u32;
                memo.insert(i, stack.last().cloned().ok_or("underflow")?);
            }
            b'h' => {
                let i = read_exact(data, &mut pos, 1)?[0] as u32;
                stack.push(memo.get(&i).cloned().ok_or("bad memo")?);
            }
            b'j' => {
                let i = u32::from_le_bytes(read_exact(data, &mut pos, 4)?.try_into().unwrap());
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

/// Every tensor in a torch zip checkpoint, by its dotted name inside the nested dicts
/// (`model.layers.0.fc1.weight` for fair-esm's `{"model": state_dict}`), as f32.
pub fn load_torch_zip(bytes: &[u8]) -> Result<crate::weights::RawTensors, String> {
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
    let root = unpickle(&pkl)?;
    let mut found = Vec::new();
    collect_tensors(&root, String::new(), &mut found);
    let mut out = Vec::with_capacity(found.len());
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    for (name, t) in found {
        if !storages.contains_key(&t.key) {
            let mut raw = Vec::new();
            archive
                .by_name(&format!("{prefix}data/{}", t.key))
                .map_err(|e| format!("storage {} of {name}: {e}", t.key))?
                .read_to_end(&mut raw)
                .map_err(|e| e.to_string())?;
            storages.insert(t.key.clone(), raw);
        }
        let raw = &storages[&t.key];
        if let Some(values) = gather(raw, &t)? {
            out.push((name, t.shape.clone(), values));
        }
    }
    Ok(out)
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

/// Materialises a strided tensor view as contiguous f32 (None for non-float storages).
fn gather(raw: &[u8], t: &TensorRef) -> Result<Option<Vec<f32>>, String> {
    let size = t.dtype.size();
    let read = |i: usize| -> Option<f32> {
        let b = raw.get(i * size..(i + 1) * size)?;
        Some(match t.dtype {
            StorageKind::F32 => f32::from_le_bytes(b.try_into().ok()?),
            StorageKind::F16 => half::f16::from_le_bytes(b.try_into().ok()?).to_f32(),
            StorageKind::BF16 => half::bf16::from_le_bytes(b.try_into().ok()?).to_f32(),
            StorageKind::F64 => f64::from_le_bytes(b.try_into().ok()?) as f32,
            _ => return None,
        })
    };
    if matches!(t.dtype, StorageKind::I64 | StorageKind::Other) {
        return Ok(None);
    }
    let numel: usize = t.shape.iter().product();
    let mut out = Vec::with_capacity(numel);
    let mut index = vec![0usize; t.shape.len()];
    for _ in 0..numel {
        let off = t.offset
            + index
                .iter()
                .zip(&t.stride)
                .map(|(i, s)| i * s)
                .sum::<usize>();
        out.push(read(off).ok_or_else(|| format!("storage {} too short", t.key))?);
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < t.shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(Some(out))
}
