//! The NVMe disk of the standard QEMU machine (`crate::qemu`): a raw image
//! written before every run, so that a guest reading it finds bytes the
//! scenario knows.
//!
//! | sector (512 bytes) | content |
//! |---|---|
//! | [`KNOWN_LBA`] (1 MiB in) | [`known_sector`]: eight 64-byte lines of text made from [`SEED`] |
//! | [`COUNTER_LBA`] (2 MiB in) | zeros: the boot counter of `hvtest=reboot-count` |
//! | everything else | zeros |
//!
//! The file is sparse (128 MiB long, two sectors written), so writing one per
//! scenario costs nothing; each run has its own, as QEMU locks the image it
//! uses and scenarios run two at a time. The initramfs's `/init` reads the
//! same sectors (`KNOWN_LBA=` and `COUNTER_LBA=` in ci/src/guests/init.sh).

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

/// The image's size: room for the bench's 64 MiB sequential read
/// (`pcibench nvme 64`); sparse, so it costs the host nothing.
pub const SIZE: u64 = 128 << 20;

/// The sector size the guest reads in (QEMU's NVMe namespace default).
pub const SECTOR: usize = 512;

/// The sector with known content.
pub const KNOWN_LBA: u64 = 2048;

/// The sector `hvtest=reboot-count` keeps its counter in (zeros: 0).
pub const COUNTER_LBA: u64 = 4096;

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

/// The known sector as `/init` prints it: a line of 128 lowercase hex
/// digits per 64 bytes (what the scenarios' expected lines are checked
/// against, and the hot-plug bench's reads).
pub fn known_hex_lines() -> Vec<String> {
    known_sector()
        .chunks_exact(LINE)
        .map(|line| line.iter().map(|b| format!("{b:02x}")).collect())
        .collect()
}

/// Writes the image to `path` (replacing what is there).
pub fn write(path: &Path) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write the NVMe image {}: {e}", path.display());
    let mut file = File::create(path).map_err(fail)?;
    file.set_len(SIZE).map_err(fail)?;
    file.seek(SeekFrom::Start(KNOWN_LBA * SECTOR as u64))
        .map_err(fail)?;
    file.write_all(&known_sector()).map_err(fail)?;
    // The counter starts at 0 (the file is new: this only says so).
    file.seek(SeekFrom::Start(COUNTER_LBA * SECTOR as u64))
        .map_err(fail)?;
    file.write_all(&[0; SECTOR]).map_err(fail)?;
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
    fn the_hex_lines_spell_the_sector() {
        let hex = known_hex_lines();
        assert_eq!(hex.len(), 8);
        assert!(hex.iter().all(|l| l.len() == 2 * LINE));
        // "hv n" and the newline at the end of the first line.
        assert!(hex[0].starts_with("6876206e"), "{}", hex[0]);
        assert!(hex[0].ends_with("0a"), "{}", hex[0]);
    }

    #[test]
    fn the_image_has_the_sector_in_place_and_zeros_at_the_counter() {
        let dir = std::env::temp_dir().join(format!("ci-disk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("nvme.img");
        std::fs::write(&path, vec![0xffu8; 8 << 20]).expect("old content");
        write(&path).expect("write");
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), SIZE);
        let mut file = File::open(&path).expect("open");
        let mut at = |lba: u64| {
            use std::io::Read;
            let mut sector = [0u8; SECTOR];
            file.seek(SeekFrom::Start(lba * SECTOR as u64))
                .expect("seek");
            file.read_exact(&mut sector).expect("read");
            sector
        };
        assert_eq!(at(KNOWN_LBA), known_sector());
        assert!(at(COUNTER_LBA).iter().all(|&b| b == 0));
        assert!(at(0).iter().all(|&b| b == 0), "the old content is gone");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
