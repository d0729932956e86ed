//! The pickle machine, reduced to what `torch.save` writes. Every resource an input can claim is
//! bounded by the input or by a fixed limit: strings by the bytes left, the stack by the opcodes
//! read, nesting by [`MAX_DEPTH`] (values are dropped and walked recursively, so depth must stay
//! small), and memo copies by [`MAX_MEMO_BYTES`] (each GET copies a value, so a few hundred
//! bytes of GETs could otherwise build an exponentially large value).

use std::collections::HashMap;

use crate::value::{StorageKind, TensorRef, Value};

/// Deepest nesting of containers accepted. Lightning checkpoints nest about ten levels.
pub const MAX_DEPTH: u32 = 200;
/// Most bytes that memo PUTs and GETs may copy in one pickle.
pub const MAX_MEMO_BYTES: usize = 64 << 20;

struct Vm<'a> {
    data: &'a [u8],
    pos: usize,
    /// Values with their nesting depth (0 for scalars).
    stack: Vec<(Value, u32)>,
    /// Stack lengths at each MARK (CPython's metastack), so finding a mark is O(1).
    marks: Vec<usize>,
    memo: HashMap<u32, (Value, u32)>,
    memo_bytes: usize,
}

impl<'a> Vm<'a> {
    fn read(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| {
            format!(
                "pickle truncated at byte {} (an argument of {n} bytes, {} left)",
                self.pos,
                self.data.len() - self.pos
            )
        })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.read(N)?);
        Ok(out)
    }

    /// A newline-terminated argument of the text opcodes (GLOBAL, INT, LONG, FLOAT).
    fn line(&mut self) -> Result<String, String> {
        let rest = &self.data[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| format!("unterminated text argument at byte {}", self.pos))?;
        let s = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.pos += end + 1;
        Ok(s)
    }

    fn push(&mut self, v: Value, depth: u32) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "values nest deeper than {MAX_DEPTH} levels at byte {}",
                self.pos
            ));
        }
        self.stack.push((v, depth));
        Ok(())
    }

    fn scalar(&mut self, v: Value) -> Result<(), String> {
        self.push(v, 0)
    }

    /// Pops one value; popping below the innermost MARK is an underflow, as in CPython.
    fn pop(&mut self) -> Result<(Value, u32), String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(format!("pickle stack underflow at byte {}", self.pos));
        }
        Ok(self.stack.pop().expect("length checked above"))
    }

    fn pop_mark(&mut self) -> Result<(Vec<Value>, u32), String> {
        let at = self
            .marks
            .pop()
            .ok_or_else(|| format!("pickle MARK missing at byte {}", self.pos))?;
        let items = self.stack.split_off(at.min(self.stack.len()));
        let depth = items.iter().map(|(_, d)| *d).max().unwrap_or(0);
        Ok((items.into_iter().map(|(v, _)| v).collect(), depth))
    }

    /// Raises the depth of the value on top after `child_depth` was put inside it.
    fn deepen_top(&mut self, child_depth: u32) -> Result<(), String> {
        let pos = self.pos;
        if let Some((_, d)) = self.stack.last_mut() {
            *d = (*d).max(child_depth + 1);
            if *d > MAX_DEPTH {
                return Err(format!(
                    "values nest deeper than {MAX_DEPTH} levels at byte {pos}"
                ));
            }
        }
        Ok(())
    }

    /// Appends `(key, value)` pairs to the dict or object on top of the stack (SETITEM(S)).
    fn set_items(&mut self, pairs: Vec<Value>, depth: u32) -> Result<(), String> {
        if let Some((Value::Dict(d) | Value::Object { items: d, .. }, _)) = self.stack.last_mut() {
            let mut it = pairs.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                d.push((k, v));
            }
        }
        self.deepen_top(depth)
    }

    fn memo_put(&mut self, index: u32) -> Result<(), String> {
        let (v, d) = self
            .stack
            .last()
            .ok_or_else(|| format!("memo PUT on an empty stack at byte {}", self.pos))?;
        let copy = (v.clone(), *d);
        self.charge(&copy.0)?;
        self.memo.insert(index, copy);
        Ok(())
    }

    fn memo_get(&mut self, index: u32) -> Result<(), String> {
        let (v, d) = self
            .memo
            .get(&index)
            .ok_or_else(|| format!("memo GET of unset slot {index} at byte {}", self.pos))?;
        let copy = (v.clone(), *d);
        self.charge(&copy.0)?;
        self.stack.push(copy);
        Ok(())
    }

    fn charge(&mut self, v: &Value) -> Result<(), String> {
        self.memo_bytes = self.memo_bytes.saturating_add(footprint(v));
        if self.memo_bytes > MAX_MEMO_BYTES {
            return Err(format!(
                "memo copies exceed {} MiB at byte {} (a GET bomb?)",
                MAX_MEMO_BYTES >> 20,
                self.pos
            ));
        }
        Ok(())
    }
}

/// Approximate bytes a copy of `v` allocates.
fn footprint(v: &Value) -> usize {
    let own = std::mem::size_of::<Value>();
    match v {
        Value::Str(s) => own + s.len(),
        Value::Global(m, n) => own + m.len() + n.len(),
        Value::Storage { key, .. } => own + key.len(),
        Value::Tensor(t) => own + t.key.len() + 16 * t.shape.len(),
        Value::Tuple(items) | Value::List(items) => {
            own + items.iter().map(footprint).fold(0, usize::saturating_add)
        }
        Value::Dict(items) | Value::Object { items, .. } => items
            .iter()
            .map(|(k, v)| footprint(k).saturating_add(footprint(v)))
            .fold(own, usize::saturating_add),
        _ => own,
    }
}

fn as_usize_list(v: &Value, what: &str) -> Result<Vec<usize>, String> {
    match v {
        Value::Tuple(items) | Value::List(items) => items
            .iter()
            .map(|i| match i {
                Value::Int(n) if *n >= 0 => Ok(*n as usize),
                other => Err(format!("tensor {what} holds {other:?}, not a size")),
            })
            .collect(),
        other => Err(format!("tensor {what} is {other:?}, not a tuple of sizes")),
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
                Some(Value::Int(o)) => return Err(format!("tensor storage offset {o} < 0")),
                _ => 0,
            };
            let shape = as_usize_list(args.get(2).ok_or("tensor without shape")?, "shape")?;
            let stride = as_usize_list(args.get(3).ok_or("tensor without stride")?, "stride")?;
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

/// Runs the pickle program in `data` and returns the top object.
pub(crate) fn unpickle(data: &[u8]) -> Result<Value, String> {
    let mut vm = Vm {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        memo_bytes: 0,
    };
    loop {
        let [op] = vm.array::<1>()?;
        step(&mut vm, op)?;
        if op == b'.' {
            return vm
                .stack
                .pop()
                .map(|(v, _)| v)
                .ok_or_else(|| "empty pickle".into());
        }
    }
}

fn step(vm: &mut Vm, op: u8) -> Result<(), String> {
    match op {
        b'.' => {}
        // PROTO, FRAME: headers only.
        0x80 => {
            vm.read(1)?;
        }
        0x95 => {
            vm.read(8)?;
        }
        b'}' => vm.push(Value::Dict(Vec::new()), 1)?,
        b']' => vm.push(Value::List(Vec::new()), 1)?,
        b')' => vm.push(Value::Tuple(Vec::new()), 1)?,
        b'(' => vm.marks.push(vm.stack.len()),
        b't' => {
            let (items, d) = vm.pop_mark()?;
            vm.push(Value::Tuple(items), d + 1)?;
        }
        b'l' => {
            let (items, d) = vm.pop_mark()?;
            vm.push(Value::List(items), d + 1)?;
        }
        b'd' => {
            let (items, d) = vm.pop_mark()?;
            vm.push(Value::Dict(Vec::new()), 1)?;
            vm.set_items(items, d)?;
        }
        0x85..=0x87 => {
            let n = (op - 0x84) as usize;
            let mut items = Vec::with_capacity(n);
            let mut depth = 0;
            for _ in 0..n {
                let (v, d) = vm.pop()?;
                items.push(v);
                depth = depth.max(d);
            }
            items.reverse();
            vm.push(Value::Tuple(items), depth + 1)?;
        }
        b'X' | 0x8c | 0x8d | b'U' | b'T' | b'C' | b'B' | 0x8e => {
            let len = match op {
                0x8c | b'U' | b'C' => vm.array::<1>()?[0] as u64,
                0x8d | 0x8e => u64::from_le_bytes(vm.array()?),
                _ => u32::from_le_bytes(vm.array()?) as u64,
            };
            // Bounded by the bytes left before anything is allocated.
            let len = usize::try_from(len).map_err(|_| format!("string of {len} bytes"))?;
            let bytes = vm.read(len)?;
            if matches!(op, b'C' | b'B' | 0x8e) {
                vm.scalar(Value::Opaque)?;
            } else {
                vm.scalar(Value::Str(String::from_utf8_lossy(bytes).into_owned()))?;
            }
        }
        b'c' => {
            let module = vm.line()?;
            let name = vm.line()?;
            vm.scalar(Value::Global(module, name))?;
        }
        0x93 => {
            let (name, _) = vm.pop()?;
            let (module, _) = vm.pop()?;
            match (module, name) {
                (Value::Str(m), Value::Str(n)) => vm.scalar(Value::Global(m, n))?,
                _ => return Err(format!("STACK_GLOBAL without strings at byte {}", vm.pos)),
            }
        }
        b'Q' => {
            let (pid, _) = vm.pop()?;
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
            vm.scalar(storage)?;
        }
        // REDUCE and NEWOBJ: callable/class, then its argument tuple.
        b'R' | 0x81 => {
            let (args, d) = vm.pop()?;
            let (callable, _) = vm.pop()?;
            // A rebuilt value holds at most what its arguments held.
            vm.push(reduce(callable, args)?, d)?;
        }
        // BUILD: an object's state (its __dict__, or (dict, slots)) becomes its items.
        b'b' => {
            let (state, d) = vm.pop()?;
            let state = match state {
                Value::Tuple(mut parts) if !parts.is_empty() => parts.swap_remove(0),
                other => other,
            };
            if let (Some((Value::Object { items, .. }, _)), Value::Dict(fields)) =
                (vm.stack.last_mut(), state)
            {
                items.extend(fields);
            }
            vm.deepen_top(d)?;
        }
        b'K' => {
            let v = vm.array::<1>()?[0] as i64;
            vm.scalar(Value::Int(v))?;
        }
        b'M' => {
            let v = u16::from_le_bytes(vm.array()?) as i64;
            vm.scalar(Value::Int(v))?;
        }
        b'J' => {
            let v = i32::from_le_bytes(vm.array()?) as i64;
            vm.scalar(Value::Int(v))?;
        }
        0x8a | 0x8b => {
            let n = if op == 0x8a {
                vm.array::<1>()?[0] as usize
            } else {
                u32::from_le_bytes(vm.array()?) as usize
            };
            let b = vm.read(n)?;
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
            vm.scalar(Value::Int(v))?;
        }
        // Protocol 0 text forms: INT (I01/I00 are True/False), LONG, FLOAT.
        b'I' | b'L' => {
            let text = vm.line()?;
            let text = text.trim_end_matches('L');
            let v = match text {
                "01" => Value::Bool(true),
                "00" => Value::Bool(false),
                t => Value::Int(t.parse().map_err(|_| format!("bad INT {t:?}"))?),
            };
            vm.scalar(v)?;
        }
        b'F' => {
            let text = vm.line()?;
            let v = text.parse().map_err(|_| format!("bad FLOAT {text:?}"))?;
            vm.scalar(Value::Float(v))?;
        }
        b'G' => {
            let v = f64::from_be_bytes(vm.array()?);
            vm.scalar(Value::Float(v))?;
        }
        0x88 => vm.scalar(Value::Bool(true))?,
        0x89 => vm.scalar(Value::Bool(false))?,
        b'N' => vm.scalar(Value::None)?,
        b's' => {
            let (v, dv) = vm.pop()?;
            let (k, dk) = vm.pop()?;
            vm.set_items(vec![k, v], dv.max(dk))?;
        }
        b'u' => {
            let (items, d) = vm.pop_mark()?;
            vm.set_items(items, d)?;
        }
        b'a' => {
            let (v, d) = vm.pop()?;
            if let Some((Value::List(l), _)) = vm.stack.last_mut() {
                l.push(v);
            }
            vm.deepen_top(d)?;
        }
        b'e' => {
            let (items, d) = vm.pop_mark()?;
            if let Some((Value::List(l), _)) = vm.stack.last_mut() {
                l.extend(items);
            }
            vm.deepen_top(d)?;
        }
        // EMPTY_SET, ADDITEMS, FROZENSET: sets are not needed.
        0x8f => vm.scalar(Value::Opaque)?,
        0x90 => {
            vm.pop_mark()?;
        }
        0x91 => {
            vm.pop_mark()?;
            vm.scalar(Value::Opaque)?;
        }
        b'q' => {
            let i = vm.array::<1>()?[0] as u32;
            vm.memo_put(i)?;
        }
        b'r' => {
            let i = u32::from_le_bytes(vm.array()?);
            vm.memo_put(i)?;
        }
        0x94 => {
            let i = vm.memo.len() as u32;
            vm.memo_put(i)?;
        }
        b'h' => {
            let i = vm.array::<1>()?[0] as u32;
            vm.memo_get(i)?;
        }
        b'j' => {
            let i = u32::from_le_bytes(vm.array()?);
            vm.memo_get(i)?;
        }
        other => {
            return Err(format!(
                "unsupported pickle opcode 0x{other:02x} at byte {}",
                vm.pos - 1
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: &mut Vec<u8>, k: &str) {
        p.push(b'X');
        p.extend((k.len() as u32).to_le_bytes());
        p.extend(k.as_bytes());
    }

    /// A protocol-2 pickle of `{"k": 4, "lr": 0.5, "on": True, "off": False, "name": "x"}`,
    /// as `pickle.dumps(..., protocol=2)` writes it.
    #[test]
    fn scalars_survive_unpickling() {
        let mut p = vec![0x80, 2, b'}', b'q', 0, b'('];
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
        // A string claiming 2^64-1 bytes is refused before anything is allocated.
        let mut p = vec![0x8d];
        p.extend(u64::MAX.to_le_bytes());
        assert!(unpickle(&p).unwrap_err().contains("truncated"));
    }

    /// `]` then `a` into itself, 10^5 times: a list nested 10^5 deep would overflow the
    /// thread's stack when dropped, so the machine stops at MAX_DEPTH.
    #[test]
    fn deep_nesting_is_refused() {
        let mut p = vec![b']'];
        for _ in 0..100_000 {
            p.extend([b']', b'a']);
        }
        p.push(b'.');
        // Each `]` then `a` appends an empty list to the one below: depth stays 2.
        assert!(unpickle(&p).is_ok());
        let mut p = Vec::new();
        p.extend(std::iter::repeat_n(b']', 100_000));
        p.extend(std::iter::repeat_n(b'a', 99_999));
        p.push(b'.');
        let err = unpickle(&p).unwrap_err();
        assert!(err.contains("deeper than 200"), "{err}");
    }

    /// PUT a list, then repeatedly GET it twice into a new list and PUT that: each round
    /// doubles the value, 2^64 nodes after 64 rounds of 10 bytes.
    #[test]
    fn memo_get_bomb_is_refused() {
        let mut p = vec![b']'];
        key(&mut p, &"x".repeat(1000));
        p.extend([b'a', b'q', 0]);
        for _ in 0..64 {
            p.extend([b'(', b'h', 0, b'h', 0, b'l', b'q', 0]);
        }
        p.push(b'.');
        let err = unpickle(&p).unwrap_err();
        assert!(err.contains("memo copies exceed"), "{err}");
    }

    #[test]
    fn popping_below_a_mark_is_an_underflow() {
        let err = unpickle(b"K\x01(a.").unwrap_err();
        assert!(err.contains("underflow"), "{err}");
    }
}
