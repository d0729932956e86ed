//! What a checkpoint unpickles to: Python values, tensor references into storages, and
//! tensors read out of them.

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
    pub(crate) fn from_name(name: &str) -> Self {
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
