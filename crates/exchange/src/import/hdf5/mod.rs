//! A reader for the part of HDF5 that h5py writes for "one float dataset per protein" files
//! (bio_embeddings' embeddings files, the ProtT5 / Ankh embedding scripts). Written from The
//! HDF Group's "HDF5 File Format Specification Version 3.0" (docs.hdfgroup.org), sections
//! II.A (superblock versions 0-3), III.A-C (v1 B-trees, symbol table nodes, local heaps),
//! IV.A (object headers v1 and v2) and IV.A.2 (dataspace, datatype, link, link info, data
//! layout v3/v4, filter pipeline, symbol table and continuation messages).
//!
//! Why our own reader: the `hdf5` crates bind libhdf5 (a C library and its headers at build
//! time), and the pure-Rust ones we found read other subsets; the subset below is ~500 lines.
//!
//! Supported: superblock v0-v3 (a user block before it too); groups as symbol tables (h5py's
//! default, `libver="earliest"`) or compact link messages (`libver="latest"`, up to 8 links);
//! datasets of little-endian float16/32/64, laid out compact, contiguous, or chunked with a v1
//! B-tree (layout v3) or a single chunk / implicit index (layout v4), filtered by deflate
//! (gzip), shuffle and fletcher32. Anything else (dense link storage, other chunk indexes,
//! big-endian or integer data, LZF/SZIP/Blosc) is refused with a message naming it. Every
//! address and size is checked against the file before use.

mod chunks;
mod messages;
mod parse;

use std::path::{Path, PathBuf};

use messages::{Layout, ObjectInfo};
use parse::{Cursor, UNDEFINED};

use crate::error::{ExchangeError, Result};

/// An open HDF5 file (memory-mapped).
pub struct Hdf5File {
    path: PathBuf,
    map: memmap2::Mmap,
    sizes: parse::Sizes,
    root: u64,
}

/// A dataset read into memory as f32, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

impl Hdf5File {
    /// Opens `path` and reads its superblock.
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(ExchangeError::io(path, "opening"))?;
        // SAFETY: the map is read-only; a file changed underneath gives wrong values or an
        // error from the bounds checks, never undefined behaviour in safe code we call.
        let map =
            unsafe { memmap2::Mmap::map(&file) }.map_err(ExchangeError::io(path, "mapping"))?;
        let (sizes, root) = superblock(&map).map_err(|m| ExchangeError::format(path, m))?;
        Ok(Hdf5File {
            path: path.to_path_buf(),
            map,
            sizes,
            root,
        })
    }

    fn err(&self, message: String) -> ExchangeError {
        ExchangeError::format(&self.path, message)
    }

    /// Every dataset under the root group, depth first, as (`group/name` path, object address),
    /// sorted by path.
    pub fn datasets(&self) -> Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        self.walk(self.root, "", 0, &mut out)
            .map_err(|m| self.err(m))?;
        out.sort();
        Ok(out)
    }

    fn walk(
        &self,
        address: u64,
        prefix: &str,
        depth: usize,
        out: &mut Vec<(String, u64)>,
    ) -> Result<(), String> {
        if depth > 32 {
            return Err(format!("groups nested deeper than 32 at {prefix:?}"));
        }
        let info = messages::object_info(&self.map, self.sizes, address)?;
        let links = match info {
            ObjectInfo::Group(links) => links,
            ObjectInfo::Dataset(_) => return Err(format!("{prefix:?} is a dataset, not a group")),
        };
        for (name, child) in links {
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            match messages::object_info(&self.map, self.sizes, child)
                .map_err(|m| format!("{path}: {m}"))?
            {
                ObjectInfo::Group(_) => self.walk(child, &path, depth + 1, out)?,
                ObjectInfo::Dataset(_) => out.push((path, child)),
            }
        }
        Ok(())
    }

    /// Reads the dataset whose object header is at `address` (from [`Hdf5File::datasets`]);
    /// `name` is for messages.
    pub fn read(&self, name: &str, address: u64) -> Result<Dataset> {
        let info = messages::object_info(&self.map, self.sizes, address)
            .map_err(|m| self.err(format!("dataset {name}: {m}")))?;
        let ObjectInfo::Dataset(d) = info else {
            return Err(self.err(format!("{name} is a group, not a dataset")));
        };
        let read = || -> Result<Vec<f32>, String> {
            let count = d
                .shape
                .iter()
                .try_fold(1usize, |a, &b| a.checked_mul(b))
                .ok_or("shape overflows")?;
            let element = d.dtype.size();
            let bytes = count.checked_mul(element).ok_or("size overflows")?;
            let raw = match &d.layout {
                Layout::Compact(data) => data.clone(),
                Layout::Contiguous { address, size } => {
                    if *address == UNDEFINED {
                        vec![0; bytes]
                    } else {
                        if (*size as usize) < bytes {
                            return Err(format!(
                                "contiguous storage of {size} bytes, {bytes} needed"
                            ));
                        }
                        parse::slice(&self.map, *address, bytes)?.to_vec()
                    }
                }
                Layout::Chunked(chunked) => {
                    chunks::read_chunked(&self.map, self.sizes, &d, chunked, bytes)?
                }
            };
            if raw.len() != bytes {
                return Err(format!("{} bytes of data, {bytes} expected", raw.len()));
            }
            Ok(d.dtype.decode(&raw))
        };
        let values = read().map_err(|m| self.err(format!("dataset {name}: {m}")))?;
        Ok(Dataset {
            shape: d.shape.clone(),
            values,
        })
    }
}

/// Finds and parses the superblock: (sizes, root group object header address).
fn superblock(map: &[u8]) -> Result<(parse::Sizes, u64), String> {
    let mut at = 0usize;
    while map.get(at..at + 8) != Some(SIGNATURE.as_slice()) {
        at = if at == 0 { 512 } else { at * 2 };
        if at + 8 > map.len() {
            return Err("not an HDF5 file (no superblock signature)".into());
        }
    }
    let mut c = Cursor::new(map, at + 8);
    let version = c.u8()?;
    match version {
        0 | 1 => {
            c.skip(4)?; // free-space, root symbol table, reserved, shared header versions
            let sizes = parse::Sizes::new(c.u8()?, c.u8()?)?;
            c.skip(1 + 2 + 2 + 4)?; // reserved, leaf K, internal K, consistency flags
            if version == 1 {
                c.skip(4)?; // indexed storage K, reserved
            }
            let base = c.uint(sizes.offset)?;
            c.skip(sizes.offset * 3)?; // free space, end of file, driver information
            c.skip(sizes.offset)?; // root entry: link name offset
            let sizes = sizes.with_base(base);
            Ok((sizes, c.address(sizes)?))
        }
        2 | 3 => {
            let sizes = parse::Sizes::new(c.u8()?, c.u8()?)?;
            c.skip(1)?; // consistency flags
            let base = c.uint(sizes.offset)?;
            c.skip(sizes.offset * 2)?; // superblock extension, end of file
            let sizes = sizes.with_base(base);
            Ok((sizes, c.address(sizes)?))
        }
        v => Err(format!("superblock version {v} is not supported (0-3 are)")),
    }
}
