//! Bounds-checked little-endian reading of an HDF5 file's bytes.

/// The undefined address (all bits set).
pub const UNDEFINED: u64 = u64::MAX;

/// Sizes of offsets and lengths from the superblock, and the base address.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub offset: usize,
    pub length: usize,
    pub base: u64,
}

impl Sizes {
    pub fn new(offset: u8, length: u8) -> Result<Self, String> {
        let ok = |s: u8| matches!(s, 2 | 4 | 8);
        if !ok(offset) || !ok(length) {
            return Err(format!(
                "offset size {offset} / length size {length} not supported"
            ));
        }
        Ok(Sizes {
            offset: offset as usize,
            length: length as usize,
            base: 0,
        })
    }

    pub fn with_base(self, base: u64) -> Self {
        Sizes { base, ..self }
    }
}

/// `len` bytes at file address `address`, or an error when they are not all in the file.
pub fn slice(map: &[u8], address: u64, len: usize) -> Result<&[u8], String> {
    let start = usize::try_from(address).map_err(|_| format!("address {address} too large"))?;
    start
        .checked_add(len)
        .and_then(|end| map.get(start..end))
        .ok_or_else(|| {
            format!(
                "{len} bytes at address {address} lie outside the file ({} bytes)",
                map.len()
            )
        })
}

/// A read position in the file.
pub struct Cursor<'a> {
    data: &'a [u8],
    pub pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8], pos: usize) -> Self {
        Cursor { data, pos }
    }

    pub fn at(data: &'a [u8], address: u64) -> Result<Self, String> {
        let pos = usize::try_from(address).map_err(|_| format!("address {address} too large"))?;
        if pos > data.len() {
            return Err(format!(
                "address {address} lies outside the file ({} bytes)",
                data.len()
            ));
        }
        Ok(Cursor { data, pos })
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| {
                format!(
                    "reading {n} bytes at {} runs past the end ({} bytes)",
                    self.pos,
                    self.data.len()
                )
            })?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), String> {
        self.bytes(n).map(|_| ())
    }

    pub fn u8(&mut self) -> Result<u8, String> {
        Ok(self.bytes(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, String> {
        Ok(self.uint(2)? as u16)
    }

    pub fn u32(&mut self) -> Result<u32, String> {
        Ok(self.uint(4)? as u32)
    }

    /// An unsigned little-endian integer of `n` (1..=8) bytes; all bits set reads as
    /// [`UNDEFINED`] whatever `n` is.
    pub fn uint(&mut self, n: usize) -> Result<u64, String> {
        let b = self.bytes(n)?;
        if n < 8 && b.iter().all(|&x| x == 0xff) {
            return Ok(UNDEFINED);
        }
        Ok(b.iter().rev().fold(0u64, |a, &x| (a << 8) | x as u64))
    }

    /// A file address: an offset-sized integer plus the base address (undefined stays so).
    pub fn address(&mut self, sizes: Sizes) -> Result<u64, String> {
        let a = self.uint(sizes.offset)?;
        Ok(if a == UNDEFINED {
            a
        } else {
            a.saturating_add(sizes.base)
        })
    }

    pub fn signature(&mut self, expected: &[u8; 4]) -> Result<(), String> {
        let at = self.pos;
        let got = self.bytes(4)?;
        if got != expected {
            return Err(format!(
                "expected {:?} at address {at}, found {:?}",
                String::from_utf8_lossy(expected),
                String::from_utf8_lossy(got)
            ));
        }
        Ok(())
    }
}
