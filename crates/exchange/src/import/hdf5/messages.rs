//! Object headers and the messages in them, and groups (symbol tables and link messages);
//! the chunks of chunked datasets are read by `chunks`.

use super::parse::{slice, Cursor, Sizes, UNDEFINED};

/// What an object header describes.
pub enum ObjectInfo {
    /// A group's links, (name, object header address).
    Group(Vec<(String, u64)>),
    Dataset(DatasetInfo),
}

/// A dataset's shape, element type, layout and filters.
pub struct DatasetInfo {
    pub shape: Vec<usize>,
    pub dtype: Float,
    pub layout: Layout,
    pub filters: Vec<Filter>,
}

/// A little-endian IEEE float element type.
#[derive(Debug, Clone, Copy)]
pub enum Float {
    F16,
    F32,
    F64,
}

impl Float {
    pub fn size(self) -> usize {
        match self {
            Float::F16 => 2,
            Float::F32 => 4,
            Float::F64 => 8,
        }
    }

    pub fn decode(self, raw: &[u8]) -> Vec<f32> {
        match self {
            Float::F16 => raw
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Float::F32 => raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Float::F64 => raw
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                .collect(),
        }
    }
}

pub enum Layout {
    Compact(Vec<u8>),
    Contiguous { address: u64, size: u64 },
    Chunked(Chunked),
}

pub struct Chunked {
    /// Chunk shape in elements (the dataset's rank).
    pub dims: Vec<usize>,
    pub index: ChunkIndex,
}

pub enum ChunkIndex {
    /// Layout v3: a v1 B-tree of chunks.
    BTreeV1(u64),
    /// Layout v4, one chunk: address, stored size (None: unfiltered), filter mask.
    Single(u64, Option<u64>, u32),
    /// Layout v4, unfiltered chunks one after another in row-major chunk order.
    Implicit(u64),
}

pub struct Filter {
    pub id: u16,
    pub name: String,
    pub values: Vec<u32>,
}

struct Message<'a> {
    kind: u16,
    data: &'a [u8],
}

/// Reads the object header at `address` and tells a group from a dataset.
pub fn object_info(map: &[u8], sizes: Sizes, address: u64) -> Result<ObjectInfo, String> {
    let messages = object_messages(map, sizes, address)?;
    let find = |kind: u16| messages.iter().find(|m| m.kind == kind).map(|m| m.data);
    if let Some(layout) = find(0x08) {
        let shape = dataspace(
            find(0x01).ok_or("dataset without a dataspace message")?,
            sizes,
        )?;
        let dtype = datatype(find(0x03).ok_or("dataset without a datatype message")?)?;
        let filters = match find(0x0B) {
            Some(data) => filter_pipeline(data)?,
            None => Vec::new(),
        };
        let layout = data_layout(layout, sizes, shape.len())?;
        return Ok(ObjectInfo::Dataset(DatasetInfo {
            shape,
            dtype,
            layout,
            filters,
        }));
    }
    if let Some(table) = find(0x11) {
        let mut c = Cursor::new(table, 0);
        let btree = c.address(sizes)?;
        let heap = c.address(sizes)?;
        return symbol_table(map, sizes, btree, heap).map(ObjectInfo::Group);
    }
    if let Some(info) = find(0x02) {
        let mut c = Cursor::new(info, 0);
        c.skip(1)?;
        let flags = c.u8()?;
        if flags & 1 != 0 {
            c.skip(8)?;
        }
        if c.address(sizes)? != UNDEFINED {
            return Err(
                "the group keeps its links in dense storage (a fractal heap, used by \
                        libver=\"latest\" groups of more than 8 links), which this reader does not \
                        take; rewrite the file with h5py's default libver"
                    .into(),
            );
        }
    }
    let mut links = Vec::new();
    for m in messages.iter().filter(|m| m.kind == 0x06) {
        if let Some(link) = link_message(m.data, sizes)? {
            links.push(link);
        }
    }
    Ok(ObjectInfo::Group(links))
}

/// Every message of the object header at `address`, continuation blocks included.
fn object_messages(map: &[u8], sizes: Sizes, address: u64) -> Result<Vec<Message<'_>>, String> {
    let mut out = Vec::new();
    let head = slice(map, address, 4)?;
    if head == b"OHDR" {
        let mut c = Cursor::at(map, address + 4)?;
        let version = c.u8()?;
        if version != 2 {
            return Err(format!("object header version {version} at {address}"));
        }
        let flags = c.u8()?;
        if flags & 0x20 != 0 {
            c.skip(16)?;
        }
        if flags & 0x10 != 0 {
            c.skip(4)?;
        }
        let size = c.uint(1 << (flags & 3))? as usize;
        let start = c.pos;
        let mut blocks = vec![(start as u64, size)];
        let mut i = 0;
        while i < blocks.len() {
            if i > 4096 {
                return Err("too many object header continuation blocks".into());
            }
            let (at, len) = blocks[i];
            let block = slice(map, at, len)?;
            let mut c = Cursor::new(block, 0);
            let creation_order = flags & 0x04 != 0;
            let header = 4 + if creation_order { 2 } else { 0 };
            while c.pos + header <= block.len() {
                let kind = c.u8()? as u16;
                let msize = c.u16()? as usize;
                c.skip(1)?;
                if creation_order {
                    c.skip(2)?;
                }
                let data = c.bytes(msize)?;
                if kind == 0x10 {
                    let mut m = Cursor::new(data, 0);
                    let at = m.address(sizes)?;
                    let len = m.uint(sizes.length)? as usize;
                    let chunk = slice(map, at, len)?;
                    if chunk.get(..4) != Some(b"OCHK".as_slice()) || len < 8 {
                        return Err(format!("continuation block at {at} is not an OCHK block"));
                    }
                    blocks.push((at + 4, len - 8));
                }
                out.push(Message { kind, data });
            }
            i += 1;
        }
        return Ok(out);
    }
    let mut c = Cursor::at(map, address)?;
    let version = c.u8()?;
    if version != 1 {
        return Err(format!(
            "object header version {version} at address {address} (1 or OHDR expected)"
        ));
    }
    c.skip(1)?;
    let count = c.u16()? as usize;
    c.skip(4)?;
    let size = c.u32()? as usize;
    c.skip(4)?; // padding to 8 bytes
    let mut blocks = vec![(c.pos as u64, size)];
    let mut i = 0;
    while i < blocks.len() && out.len() < count {
        if i > 4096 {
            return Err("too many object header continuation blocks".into());
        }
        let (at, len) = blocks[i];
        let block = slice(map, at, len)?;
        let mut c = Cursor::new(block, 0);
        while c.pos + 8 <= block.len() && out.len() < count {
            let kind = c.u16()?;
            let msize = c.u16()? as usize;
            c.skip(4)?;
            let data = c.bytes(msize)?;
            if kind == 0x10 {
                let mut m = Cursor::new(data, 0);
                let at = m.address(sizes)?;
                let len = m.uint(sizes.length)? as usize;
                blocks.push((at, len));
            }
            out.push(Message { kind, data });
        }
        i += 1;
    }
    Ok(out)
}

fn dataspace(data: &[u8], sizes: Sizes) -> Result<Vec<usize>, String> {
    let mut c = Cursor::new(data, 0);
    let version = c.u8()?;
    let rank = c.u8()? as usize;
    let _flags = c.u8()?;
    match version {
        1 => c.skip(5)?,
        2 => c.skip(1)?,
        v => return Err(format!("dataspace message version {v}")),
    }
    (0..rank)
        .map(|_| c.uint(sizes.length).map(|d| d as usize))
        .collect()
}

fn datatype(data: &[u8]) -> Result<Float, String> {
    let mut c = Cursor::new(data, 0);
    let class_version = c.u8()?;
    let bits = c.bytes(3)?;
    let size = c.u32()?;
    let class = class_version & 0x0f;
    if class != 1 {
        let name = match class {
            0 => "integer",
            3 => "string",
            6 => "compound",
            9 => "variable-length",
            _ => "non-float",
        };
        return Err(format!(
            "{name} data (class {class}); only float datasets hold embeddings"
        ));
    }
    if bits[0] & 1 != 0 {
        return Err("big-endian floats are not supported".into());
    }
    match size {
        2 => Ok(Float::F16),
        4 => Ok(Float::F32),
        8 => Ok(Float::F64),
        s => Err(format!("{s}-byte floats are not supported")),
    }
}

fn filter_pipeline(data: &[u8]) -> Result<Vec<Filter>, String> {
    let mut c = Cursor::new(data, 0);
    let version = c.u8()?;
    let count = c.u8()?;
    if version == 1 {
        c.skip(6)?;
    }
    let mut out = Vec::new();
    for _ in 0..count {
        let id = c.u16()?;
        let name_len = if version == 1 || id >= 256 {
            c.u16()? as usize
        } else {
            0
        };
        let _flags = c.u16()?;
        let n_values = c.u16()? as usize;
        let name_bytes = if version == 1 {
            c.bytes(name_len.div_ceil(8) * 8)?
        } else {
            c.bytes(name_len)?
        };
        let name = String::from_utf8_lossy(name_bytes)
            .trim_end_matches('\0')
            .to_string();
        let values = (0..n_values)
            .map(|_| c.u32())
            .collect::<Result<Vec<_>, _>>()?;
        if version == 1 && n_values % 2 == 1 {
            c.skip(4)?;
        }
        out.push(Filter { id, name, values });
    }
    Ok(out)
}

fn data_layout(data: &[u8], sizes: Sizes, rank: usize) -> Result<Layout, String> {
    let mut c = Cursor::new(data, 0);
    let version = c.u8()?;
    // Version 5 (HDF5 2.0) has version 4's structure.
    if !(3..=5).contains(&version) {
        return Err(format!(
            "data layout message version {version} (3 to 5 are supported)"
        ));
    }
    let class = c.u8()?;
    match class {
        0 => {
            let size = c.u16()? as usize;
            Ok(Layout::Compact(c.bytes(size)?.to_vec()))
        }
        1 => Ok(Layout::Contiguous {
            address: c.address(sizes)?,
            size: c.uint(sizes.length)?,
        }),
        2 if version == 3 => {
            let n = c.u8()? as usize;
            let btree = c.address(sizes)?;
            let dims = (0..n)
                .map(|_| c.u32().map(|d| d as usize))
                .collect::<Result<Vec<_>, _>>()?;
            chunk_dims(dims, rank).map(|dims| {
                Layout::Chunked(Chunked {
                    dims,
                    index: ChunkIndex::BTreeV1(btree),
                })
            })
        }
        2 => {
            let flags = c.u8()?;
            let n = c.u8()? as usize;
            let width = c.u8()? as usize;
            let dims = (0..n)
                .map(|_| c.uint(width).map(|d| d as usize))
                .collect::<Result<Vec<_>, _>>()?;
            let dims = chunk_dims(dims, rank)?;
            let index = match c.u8()? {
                1 => {
                    let filtered = if flags & 2 != 0 {
                        Some((c.uint(sizes.length)?, c.u32()?))
                    } else {
                        None
                    };
                    let address = c.address(sizes)?;
                    ChunkIndex::Single(address, filtered.map(|f| f.0), filtered.map_or(0, |f| f.1))
                }
                2 => ChunkIndex::Implicit(c.address(sizes)?),
                t => {
                    let name = match t {
                        3 => "fixed array",
                        4 => "extensible array",
                        5 => "version 2 B-tree",
                        _ => "unknown",
                    };
                    return Err(format!(
                        "chunk index type {t} ({name}) is not supported; rewrite the file with h5py's \
                         default libver, or without chunking"
                    ));
                }
            };
            Ok(Layout::Chunked(Chunked { dims, index }))
        }
        c => Err(format!(
            "data layout class {c} (virtual datasets are not supported)"
        )),
    }
}

/// Chunk dimensions as stored (the dataset's rank plus the element size) → rank dims.
fn chunk_dims(mut dims: Vec<usize>, rank: usize) -> Result<Vec<usize>, String> {
    if dims.len() != rank + 1 || dims.contains(&0) {
        return Err(format!(
            "chunk dimensions {dims:?} do not fit a rank-{rank} dataset"
        ));
    }
    dims.pop();
    Ok(dims)
}

fn symbol_table(
    map: &[u8],
    sizes: Sizes,
    btree: u64,
    heap: u64,
) -> Result<Vec<(String, u64)>, String> {
    let mut h = Cursor::at(map, heap)?;
    h.signature(b"HEAP")?;
    h.skip(4)?;
    let heap_size = h.uint(sizes.length)? as usize;
    h.skip(sizes.length)?;
    let heap_data = h.address(sizes)?;
    let names = slice(map, heap_data, heap_size)?;
    let mut nodes = Vec::new();
    btree_v1(map, sizes, btree, 0, 0, &mut |_, child| {
        nodes.push(child);
        Ok(())
    })?;
    let mut links = Vec::new();
    for node in nodes {
        let mut c = Cursor::at(map, node)?;
        c.signature(b"SNOD")?;
        c.skip(2)?;
        let count = c.u16()?;
        for _ in 0..count {
            let name_offset = c.uint(sizes.offset)? as usize;
            let object = c.address(sizes)?;
            c.skip(4 + 4 + 16)?;
            let name = names
                .get(name_offset..)
                .and_then(|s| s.split(|&b| b == 0).next())
                .ok_or_else(|| format!("link name offset {name_offset} outside the local heap"))?;
            links.push((String::from_utf8_lossy(name).into_owned(), object));
        }
    }
    Ok(links)
}

/// Walks the v1 B-tree at `address` of node type `kind`, calling `leaf(key, child)` for every
/// child of a level-0 node. `key_size` is 0 for group nodes (keys are heap offsets) or the
/// chunk key size; `leaf` gets the raw key before the child.
/// Called with (raw key, child address) for every child of a level-0 B-tree node.
type LeafVisitor<'a> = dyn FnMut(&[u8], u64) -> Result<(), String> + 'a;

pub(super) fn btree_v1(
    map: &[u8],
    sizes: Sizes,
    address: u64,
    kind: u8,
    key_size: usize,
    leaf: &mut LeafVisitor<'_>,
) -> Result<(), String> {
    let mut pending = vec![(address, 0usize)];
    let mut visited = 0usize;
    while let Some((node, depth)) = pending.pop() {
        visited += 1;
        if visited > 1 << 20 || depth > 64 {
            return Err("B-tree too large or cyclic".into());
        }
        let mut c = Cursor::at(map, node)?;
        c.signature(b"TREE")?;
        let node_kind = c.u8()?;
        if node_kind != kind {
            return Err(format!(
                "B-tree node at {node} has type {node_kind}, expected {kind}"
            ));
        }
        let level = c.u8()?;
        let entries = c.u16()? as usize;
        c.skip(sizes.offset * 2)?;
        let key_len = if kind == 0 { sizes.length } else { key_size };
        let mut children = Vec::with_capacity(entries);
        for _ in 0..entries {
            let key = c.bytes(key_len)?;
            let child = c.address(sizes)?;
            children.push((key, child));
        }
        if level == 0 {
            for (key, child) in children {
                leaf(key, child)?;
            }
        } else {
            for (_, child) in children.into_iter().rev() {
                pending.push((child, depth + 1));
            }
        }
    }
    Ok(())
}

fn link_message(data: &[u8], sizes: Sizes) -> Result<Option<(String, u64)>, String> {
    let mut c = Cursor::new(data, 0);
    let version = c.u8()?;
    if version != 1 {
        return Err(format!("link message version {version}"));
    }
    let flags = c.u8()?;
    let kind = if flags & 0x08 != 0 { c.u8()? } else { 0 };
    if flags & 0x04 != 0 {
        c.skip(8)?;
    }
    if flags & 0x10 != 0 {
        c.skip(1)?;
    }
    let len = c.uint(1 << (flags & 3))? as usize;
    let name = String::from_utf8_lossy(c.bytes(len)?).into_owned();
    if kind != 0 {
        return Ok(None); // soft and external links point at nothing in this file
    }
    Ok(Some((name, c.address(sizes)?)))
}
