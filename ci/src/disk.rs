//! The NVMe disk of the standard QEMU machine (`crate::qemu`): a raw image
//! written before every run, so that a guest reading it finds bytes the
//! scenario knows.
//!
//! | sector (512 bytes) | content |
//! |---|---|
//! | [`KNOWN_LBA`] (1 MiB in) | [`known_sector`]: eight 64-byte lines of text made from [`SEED`] |
//! | everything else | zeros |
//!
//! The file is sparse (16 MiB long, one sector written), so writing one per
//! scenario costs nothing; each run has its own, as QEMU locks the image it
//! uses and scenarios run two at a time. The initramfs's `/init` reads the
//! same sectors (`KNOWN_LBA=` and `COUNTER_LBA=` in ci/src/guests/init.sh).

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

/// The image's size.
pub const SIZE: u64 = 16 << 20;

/// The sector size the guest reads in (QEMU's NVMe namespace default).
pub const SECTOR: usize = 512;

/// The sector with known content.
pub const KNOWN_LBA: u64 = 2048;

/// What the known sector is made of.
pub const SEED: &str = "hv nvme test sector";

/// The bytes per line of the known sector, and per line `/init` prints.
pub const LINE: usize = 64;

/// Text to fill each line with after its number.
const FILL: &str = "the quick brown fox jumps over the lazy dog; ";

/// The known sector: line k (of 8) is `hv nvme test sector 2048 line k: `,
/// then [`FILL`] over and over, and a newline as its 64th byte.
pub fn known_sector() -> [u8; SECTOR] {
    let mut sector = [0u8; SECTOR];
    for (k, line) in sector.chunks_exact_mut(LINE).enumerate() {
        let head = format!("{SEED} {KNOWN_LBA} line {k}: ");
        let text = head.bytes().chain(FILL.bytes().cycle());
        for (b, t) in line.iter_mut().zip(text) {
            *b = t;
        }
        line[LINE - 1] = b'\n';
    }
    sector
}

/// Writes the image to `path` (replacing what is there).
pub fn write(path: &Path) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write the NVMe image {}: {e}", path.display());
    let mut file = File::create(path).map_err(fail)?;
    file.set_len(SIZE).map_err(fail)?;
    file.seek(SeekFrom::Start(KNOWN_LBA * SECTOR as u64))
        .map_err(fail)?;
    file.write_all(&known_sector()).map_err(fail)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_known_sector_is_eight_numbered_lines_of_text() {
        let s = known_sector();
        let text = std::str::from_utf8(&s).expect("text");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8);
        assert_eq!(
            lines[0],
            "hv nvme test sector 2048 line 0: the quick brown fox jumps over"
        );
        for (k, line) in lines.iter().enumerate() {
            assert_eq!(line.len(), LINE - 1);
            assert!(line.starts_with(&format!("{SEED} {KNOWN_LBA} line {k}: ")));
        }
    }

    #[test]
    fn the_image_has_the_sector_in_place_and_zeros_at_the_counter() {
        let dir = std::env::temp_dir().join(format!("ci-disk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("nvme.img");
        std::fs::write(&path, vec![0xffu8; 8 << 20]).expect("old content");
        write(&path).expect("write");
        let image = std::fs::read(&path).expect("read");
        assert_eq!(image.len() as u64, SIZE);
        let at = |lba: u64| &image[(lba as usize) * SECTOR..(lba as usize + 1) * SECTOR];
        assert_eq!(at(KNOWN_LBA), known_sector());
        assert!(at(4096).iter().all(|&b| b == 0));
        assert!(at(0).iter().all(|&b| b == 0), "the old content is gone");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
