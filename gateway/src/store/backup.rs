//! Backups of the embedded store: every tree, every key and value, in one file that says what
//! it is and proves it is whole.
//!
//! Format `raccordo-backup/1`:
//! - a first line `raccordo-backup/1\n`;
//! - frames: `T` + u32 length + tree name, then `E` + u32 length + key + u32 length + value for
//!   each entry of that tree, in key order; `Z` ends the frames;
//! - the SHA-256 of everything before it (32 bytes).
//!
//! A backup is taken while holding the store's writer, so it is one consistent instant: no write
//! is half in it. A restore reads the file twice: first to check the digest (nothing is written
//! from a damaged file), then to load it into a new, empty store, whose audit chain is verified
//! before the restore reports success.
//!
//! The store's data is sealed under keys derived from the master secret, which is not in the
//! store: a backup is useless without `keys/master.key` (or RACCORDO_KEYS__MASTER_KEY), and that
//! secret is backed up apart, by its own procedure.

use super::{Store, StoreError};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

const MAGIC: &[u8] = b"raccordo-backup/1\n";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("backup: {0}")]
    Io(#[from] std::io::Error),
    #[error("backup: {0} is not a raccordo-backup/1 file")]
    NotABackup(String),
    #[error("backup: {0} is damaged: its digest does not match its content; nothing was restored")]
    Damaged(String),
    #[error("backup: {0} already holds a store; restore into an empty directory")]
    NotEmpty(String),
}

#[derive(Debug, serde::Serialize)]
pub struct BackupReport {
    pub trees: usize,
    pub entries: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// Writes through to a file and a digest at once.
struct Hashing<W: Write> {
    inner: W,
    digest: aws_lc_rs::digest::Context,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digest.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn frame(w: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| std::io::Error::other("an entry larger than 4 GiB"))?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(bytes)
}

impl Store {
    /// Writes a consistent copy of the whole store to `out` (through `out.part`, renamed when
    /// complete and on disk; mode 0600).
    pub fn backup(&self, out: &Path) -> Result<BackupReport, BackupError> {
        let sled = self.sled()?;
        // Holding the writer keeps every write out while the copy is taken.
        sled.exclusive(|| copy(&sled.db, out))?
    }
}

fn copy(db: &sled::Db, out: &Path) -> Result<BackupReport, BackupError> {
    let part = out.with_extension("part");
    let file = crate::files::create_private(&part)?;
    let mut w = Hashing {
        inner: BufWriter::new(file),
        digest: aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
        bytes: 0,
    };
    w.write_all(MAGIC)?;
    let (mut trees, mut entries) = (0, 0u64);
    for name in db.tree_names() {
        let tree = db.open_tree(&name).map_err(StoreError::from)?;
        w.write_all(b"T")?;
        frame(&mut w, &name)?;
        trees += 1;
        for item in tree.iter() {
            let (k, v) = item.map_err(StoreError::from)?;
            w.write_all(b"E")?;
            frame(&mut w, &k)?;
            frame(&mut w, &v)?;
            entries += 1;
        }
    }
    w.write_all(b"Z")?;
    let Hashing {
        inner,
        digest,
        bytes,
    } = w;
    let sum = digest.finish();
    let mut file = inner.into_inner().map_err(|e| e.into_error())?;
    file.write_all(sum.as_ref())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&part, out)?;
    Ok(BackupReport {
        trees,
        entries,
        bytes: bytes + 32,
        sha256: crate::pki::hex(sum.as_ref()),
    })
}

/// Checks that a file is a whole backup: magic line and digest.
fn check(from: &Path) -> Result<(), BackupError> {
    let name = from.display().to_string();
    let len = std::fs::metadata(from)?.len();
    if len < MAGIC.len() as u64 + 33 {
        return Err(BackupError::NotABackup(name));
    }
    let mut r = BufReader::new(std::fs::File::open(from)?);
    let mut magic = vec![0u8; MAGIC.len()];
    r.read_exact(&mut magic)?;
    if magic != MAGIC {
        return Err(BackupError::NotABackup(name));
    }
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(&magic);
    let mut left = len - MAGIC.len() as u64 - 32;
    let mut buf = vec![0u8; 1 << 16];
    while left > 0 {
        let n = (left as usize).min(buf.len());
        r.read_exact(&mut buf[..n])?;
        ctx.update(&buf[..n]);
        left -= n as u64;
    }
    let mut stored = [0u8; 32];
    r.read_exact(&mut stored)?;
    if ctx.finish().as_ref() != stored {
        return Err(BackupError::Damaged(name));
    }
    Ok(())
}

fn read_frame(r: &mut impl Read) -> Result<Vec<u8>, BackupError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let mut out = vec![0u8; u32::from_be_bytes(len) as usize];
    r.read_exact(&mut out)?;
    Ok(out)
}

/// Loads a backup into a new store at `store_dir`, which must not hold one; then verifies the
/// audit chain of what was restored.
pub fn restore(
    from: &Path,
    store_dir: &Path,
) -> Result<(BackupReport, super::audit::VerifyReport), BackupError> {
    check(from)?;
    if std::fs::read_dir(store_dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(BackupError::NotEmpty(store_dir.display().to_string()));
    }
    let name = from.display().to_string();
    let mut r = BufReader::new(std::fs::File::open(from)?);
    let mut magic = vec![0u8; MAGIC.len()];
    r.read_exact(&mut magic)?;
    let db = sled::Config::new()
        .path(store_dir)
        .open()
        .map_err(StoreError::from)?;
    let (mut trees, mut entries) = (0, 0u64);
    let mut tree: Option<sled::Tree> = None;
    let mut batch = sled::Batch::default();
    let mut pending = 0;
    loop {
        let mut tag = [0u8; 1];
        r.read_exact(&mut tag)?;
        match &tag {
            b"T" => {
                if let Some(t) = &tree {
                    t.apply_batch(std::mem::take(&mut batch))
                        .map_err(StoreError::from)?;
                }
                pending = 0;
                tree = Some(
                    db.open_tree(read_frame(&mut r)?)
                        .map_err(StoreError::from)?,
                );
                trees += 1;
            }
            b"E" => {
                let Some(t) = &tree else {
                    return Err(BackupError::NotABackup(name));
                };
                let (k, v) = (read_frame(&mut r)?, read_frame(&mut r)?);
                batch.insert(k, v);
                entries += 1;
                pending += 1;
                if pending == 10_000 {
                    t.apply_batch(std::mem::take(&mut batch))
                        .map_err(StoreError::from)?;
                    pending = 0;
                }
            }
            b"Z" => break,
            _ => return Err(BackupError::NotABackup(name)),
        }
    }
    if let Some(t) = &tree {
        t.apply_batch(batch).map_err(StoreError::from)?;
    }
    db.flush().map_err(StoreError::from)?;
    // Every handle on the database goes before it is opened again (sled's file lock).
    drop(tree);
    drop(db);
    let verified = Store::open(store_dir)?.verify_audit()?;
    let bytes = std::fs::metadata(from)?.len();
    Ok((
        BackupReport {
            trees,
            entries,
            bytes,
            sha256: String::new(),
        },
        verified,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit::AuditRecord;

    fn store_with_entries(dir: &Path) -> Store {
        let store = Store::open(dir).unwrap();
        for i in 0..25_000u32 {
            let (_, _t) = store
                .write(|txn| -> Result<(), StoreError> {
                    txn.put(format!("ref/{i:06}").as_bytes(), &i)?;
                    if i % 5_000 == 0 {
                        txn.audit(AuditRecord {
                            at: time::OffsetDateTime::UNIX_EPOCH,
                            actor: "test".into(),
                            action: "test.write".into(),
                            referral: None,
                            subject: None,
                            detail: None,
                        })?;
                    }
                    Ok(())
                })
                .unwrap();
        }
        store
    }

    #[test]
    fn a_backup_restores_every_entry_and_a_damaged_one_restores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_entries(&dir.path().join("a"));
        let file = dir.path().join("backup.rbk");
        let report = store.backup(&file).unwrap();
        assert!(report.entries >= 25_000);
        assert!(!dir.path().join("backup.part").exists());

        let (restored, verified) = restore(&file, &dir.path().join("b")).unwrap();
        assert_eq!(restored.entries, report.entries);
        assert!(verified.valid, "{verified:?}");
        let copy = Store::open(&dir.path().join("b")).unwrap();
        use crate::store::Read;
        assert_eq!(copy.get::<u32>(b"ref/024999").unwrap(), Some(24_999));
        assert_eq!(copy.get::<u32>(b"ref/000000").unwrap(), Some(0));

        // Into a store that exists: refused.
        assert!(matches!(
            restore(&file, &dir.path().join("b")),
            Err(BackupError::NotEmpty(_))
        ));
        // One byte changed anywhere: refused before anything is written.
        let mut bytes = std::fs::read(&file).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        let damaged = dir.path().join("damaged.rbk");
        std::fs::write(&damaged, bytes).unwrap();
        assert!(matches!(
            restore(&damaged, &dir.path().join("c")),
            Err(BackupError::Damaged(_))
        ));
        assert!(!dir.path().join("c").exists());
        std::fs::write(&damaged, b"not a backup").unwrap();
        assert!(matches!(
            restore(&damaged, &dir.path().join("c")),
            Err(BackupError::NotABackup(_))
        ));
    }
}
