//! A finished step's log, compressed in zstd's *seekable* format
//! (zstd's `contrib/seekable_format`): independent frames of `FRAME`
//! bytes each, then a seek table in a skippable frame. `zstd -d` reads the
//! file as any `.zst` (it skips the table), and a reader of a page (the
//! UI's tail, an offset) decompresses only the frames that hold it, so a
//! 100 MB log still opens at its tail as fast as a small one.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Uncompressed bytes per frame: a tail page (64 KiB) touches one or two.
const FRAME: usize = 256 * 1024;
/// ruzstd implements only "Fastest" (about zstd level 1) and "Uncompressed";
/// "Default" panics as unimplemented in 0.8.
const LEVEL: ruzstd::encoding::CompressionLevel = ruzstd::encoding::CompressionLevel::Fastest;
/// The seek table's skippable frame (`0x184D2A5E`, the last skippable
/// magic, as the format says).
const SKIPPABLE_MAGIC: u32 = 0x184D_2A5E;
const SEEKABLE_MAGIC: u32 = 0x8F92_EAB1;
/// Number_Of_Frames, Seek_Table_Descriptor, Seekable_Magic_Number.
const FOOTER: usize = 9;
/// Compressed_Size, Decompressed_Size (no checksums).
const ENTRY: usize = 8;

/// Where a step log's compressed form lives, beside the plain one.
pub fn compressed_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".zst");
    PathBuf::from(name)
}

/// Compresses `src` into `dst` (through a temporary file renamed into
/// place once synced, so `dst` is whole or absent); returns its size.
pub fn compress_file(src: &Path, dst: &Path) -> io::Result<u64> {
    let tmp = {
        let mut name = dst.as_os_str().to_owned();
        name.push(".tmp");
        PathBuf::from(name)
    };
    let result = (|| {
        let mut input = File::open(src)?;
        let mut out = open_private(&tmp)?;
        let mut entries: Vec<(u32, u32)> = Vec::new();
        let mut buf = vec![0u8; FRAME];
        let mut total = 0u64;
        loop {
            let n = read_full(&mut input, &mut buf)?;
            if n == 0 {
                break;
            }
            let frame = ruzstd::encoding::compress_to_vec(&buf[..n], LEVEL);
            out.write_all(&frame)?;
            entries.push((len_u32(frame.len())?, len_u32(n)?));
            total += frame.len() as u64;
        }
        let table = seek_table(&entries)?;
        out.write_all(&table)?;
        out.sync_all()?;
        Ok::<_, io::Error>(total + table.len() as u64)
    })();
    match result {
        Ok(size) => {
            std::fs::rename(&tmp, dst)?;
            Ok(size)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Compresses every plain step log in a finished build's directory and
/// removes the plain file and its restart checkpoint (a finished build is
/// never resumed); leftovers of an interrupted run (`.tmp`) go too.
pub fn seal_dir(dir: &Path) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("log") => {
                compress_file(&path, &compressed_path(&path))?;
                std::fs::remove_file(&path)?;
                remove_if_present(&super::checkpoint::path_of(&path))?;
            }
            Some("offset") if !path.with_extension("log").exists() => remove_if_present(&path)?,
            Some("tmp") => remove_if_present(&path)?,
            _ => {}
        }
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn open_private(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

fn len_u32(n: usize) -> io::Result<u32> {
    u32::try_from(n).map_err(|_| io::Error::other("a zstd frame larger than 4 GiB"))
}

/// Reads until `buf` is full or the file ends.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn seek_table(entries: &[(u32, u32)]) -> io::Result<Vec<u8>> {
    let body = entries.len() * ENTRY + FOOTER;
    let mut out = Vec::with_capacity(8 + body);
    out.extend(SKIPPABLE_MAGIC.to_le_bytes());
    out.extend(len_u32(body)?.to_le_bytes());
    for (compressed, plain) in entries {
        out.extend(compressed.to_le_bytes());
        out.extend(plain.to_le_bytes());
    }
    out.extend(len_u32(entries.len())?.to_le_bytes());
    out.push(0); // descriptor: no checksums
    out.extend(SEEKABLE_MAGIC.to_le_bytes());
    Ok(out)
}

/// One frame: where it starts in the file and in the plain log.
#[derive(Debug, Clone, Copy)]
struct Frame {
    at: u64,
    size: u32,
    plain_at: u64,
    plain_size: u32,
}

/// A compressed log opened for reading.
pub struct Seekable {
    file: File,
    frames: Vec<Frame>,
    len: u64,
}

fn corrupt(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not a seekable zstd log: {what}"),
    )
}

impl Seekable {
    pub fn open(path: &Path) -> io::Result<Self> {
        let mut file = File::open(path)?;
        let size = file.metadata()?.len();
        if size < (8 + FOOTER) as u64 {
            return Err(corrupt("too short"));
        }
        let mut footer = [0u8; FOOTER];
        file.seek(SeekFrom::End(-(FOOTER as i64)))?;
        file.read_exact(&mut footer)?;
        let count = u32::from_le_bytes([footer[0], footer[1], footer[2], footer[3]]) as usize;
        let magic = u32::from_le_bytes([footer[5], footer[6], footer[7], footer[8]]);
        if magic != SEEKABLE_MAGIC || footer[4] != 0 {
            return Err(corrupt("no seek table"));
        }
        let table_len = (8 + count * ENTRY + FOOTER) as u64;
        if table_len > size {
            return Err(corrupt("seek table longer than the file"));
        }
        let mut table = vec![0u8; count * ENTRY];
        file.seek(SeekFrom::Start(size - table_len + 8))?;
        file.read_exact(&mut table)?;
        let mut frames = Vec::with_capacity(count);
        let (mut at, mut plain_at) = (0u64, 0u64);
        for entry in table.chunks_exact(ENTRY) {
            let size = u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
            let plain_size = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]);
            frames.push(Frame {
                at,
                size,
                plain_at,
                plain_size,
            });
            at += u64::from(size);
            plain_at += u64::from(plain_size);
        }
        if at + table_len != size {
            return Err(corrupt("frame sizes do not add up to the file"));
        }
        Ok(Self {
            file,
            frames,
            len: plain_at,
        })
    }

    /// The plain log's length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// At most `max` bytes of the plain log from `offset` on.
    pub fn read_at(&mut self, offset: u64, max: usize) -> io::Result<Vec<u8>> {
        let end = offset.saturating_add(max as u64).min(self.len);
        let mut out = Vec::new();
        if offset >= end {
            return Ok(out);
        }
        let first = self
            .frames
            .partition_point(|f| f.plain_at + u64::from(f.plain_size) <= offset);
        for frame in self.frames[first..].iter().copied() {
            if frame.plain_at >= end {
                break;
            }
            let mut packed = vec![0u8; frame.size as usize];
            self.file.seek(SeekFrom::Start(frame.at))?;
            self.file.read_exact(&mut packed)?;
            let plain = decompress_frame(&packed, frame.plain_size as usize)?;
            if plain.len() != frame.plain_size as usize {
                return Err(corrupt("a frame decompressed to another size"));
            }
            let from = offset.saturating_sub(frame.plain_at) as usize;
            let to = (end - frame.plain_at).min(u64::from(frame.plain_size)) as usize;
            out.extend_from_slice(&plain[from..to]);
        }
        Ok(out)
    }
}

/// One frame's plain bytes.
fn decompress_frame(packed: &[u8], size: usize) -> io::Result<Vec<u8>> {
    let mut decoder = ruzstd::decoding::StreamingDecoder::new(packed).map_err(io::Error::other)?;
    let mut out = Vec::with_capacity(size);
    decoder.read_to_end(&mut out)?;
    Ok(out)
}

/// The whole plain log of a compressed one (tests, tools).
pub fn read_all(path: &Path) -> io::Result<Vec<u8>> {
    let mut log = Seekable::open(path)?;
    let len = usize::try_from(log.len()).unwrap_or(usize::MAX);
    log.read_at(0, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        // Compressible, but not one repeated byte: line numbers.
        let mut out = Vec::with_capacity(len + 32);
        let mut i = 0u64;
        while out.len() < len {
            out.extend(format!("line {i} of the build output\n").bytes());
            i += 1;
        }
        out.truncate(len);
        out
    }

    fn round_trip(len: usize) {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("1.0.log");
        let data = sample(len);
        std::fs::write(&src, &data).expect("write");
        let dst = compressed_path(&src);
        let size = compress_file(&src, &dst).expect("compress");
        assert_eq!(std::fs::metadata(&dst).expect("meta").len(), size);
        let mut log = Seekable::open(&dst).expect("open");
        assert_eq!(log.len(), len as u64);
        assert_eq!(log.read_at(0, usize::MAX).expect("all"), data, "whole log");
        // Every page boundary the readers use, across frame edges.
        for (offset, max) in [
            (0, 1),
            (1, 64 * 1024),
            (FRAME as u64 - 3, 7),
            (FRAME as u64, FRAME),
            (len as u64 / 2, 64 * 1024),
            (len.saturating_sub(10) as u64, 64 * 1024),
            (len as u64, 10),
            (len as u64 + 5, 10),
        ] {
            let start = (offset as usize).min(len);
            let end = start.saturating_add(max).min(len);
            assert_eq!(
                log.read_at(offset, max).expect("read"),
                &data[start..end],
                "offset {offset} max {max}"
            );
        }
    }

    #[test]
    fn logs_read_back_byte_for_byte_at_any_offset() {
        round_trip(0);
        round_trip(5);
        round_trip(FRAME);
        round_trip(FRAME * 3 + 1234);
    }

    #[test]
    fn frames_are_independent_zstd_frames() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("1.0.log");
        let data = sample(FRAME * 2 + 17);
        std::fs::write(&src, &data).expect("write");
        let dst = compressed_path(&src);
        compress_file(&src, &dst).expect("compress");
        let packed = std::fs::read(&dst).expect("read");
        assert!(packed.len() < data.len() / 4, "{} bytes", packed.len());
        // Each frame decodes on its own; the seek table is a skippable
        // frame (magic 0x184D2A5E) after them. The e2e test decodes the
        // whole file with the reference `zstd -d`.
        let log = Seekable::open(&dst).expect("open");
        let mut plain = Vec::new();
        for f in &log.frames {
            let frame = &packed[f.at as usize..(f.at + u64::from(f.size)) as usize];
            plain.extend(decompress_frame(frame, f.plain_size as usize).expect("frame"));
        }
        assert_eq!(plain, data);
        let table_at = log.frames.last().map_or(0, |f| f.at + u64::from(f.size)) as usize;
        assert_eq!(
            packed[table_at..table_at + 4],
            SKIPPABLE_MAGIC.to_le_bytes()
        );
        assert_eq!(read_all(&dst).expect("all"), data);
    }

    #[test]
    fn a_damaged_file_is_refused_not_misread() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.zst");
        std::fs::write(&path, b"not zstd at all, just some bytes").expect("write");
        assert!(Seekable::open(&path).is_err());
        let src = dir.path().join("1.0.log");
        std::fs::write(&src, sample(1000)).expect("write");
        let dst = compressed_path(&src);
        compress_file(&src, &dst).expect("compress");
        let mut packed = std::fs::read(&dst).expect("read");
        packed.remove(3);
        std::fs::write(&dst, &packed).expect("write");
        assert!(Seekable::open(&dst).is_err());
    }
}
