//! Builds small ELF images for the loader's tests.

use super::elf::{Class, EM_386, EM_X86_64, ET_EXEC, PT_LOAD, PT_NOTE, SHT_NOTE};
use alloc::vec::Vec;
use vmm_glue::xen::elfnote::{XEN_ELFNOTE_NAME, XEN_ELFNOTE_PHYS32_ENTRY};

/// A file offset: inside the payload (after the headers) or absolute.
#[derive(Clone, Copy, Debug)]
pub enum Off {
    Payload(u64),
    Abs(u64),
}

#[derive(Clone, Copy, Debug)]
pub struct Ph {
    pub p_type: u32,
    pub flags: u32,
    pub offset: Off,
    pub vaddr: u64,
    pub paddr: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub align: u64,
}

#[derive(Clone, Copy, Debug)]
pub struct Sh {
    pub sh_type: u32,
    pub offset: Off,
    pub size: u64,
    pub align: u64,
}

/// ELF header, program headers, section headers (with the null section
/// first), then the payload.
#[derive(Clone, Debug)]
pub struct Builder {
    pub class: Class,
    pub e_type: u16,
    pub machine: u16,
    pub entry: u64,
    pub phs: Vec<Ph>,
    pub shs: Vec<Sh>,
    pub payload: Vec<u8>,
}

/// One note, 4-byte aligned, `namesz` counting the NUL.
pub fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
    v.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    v.extend_from_slice(&kind.to_le_bytes());
    v.extend_from_slice(name);
    v.push(0);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v.extend_from_slice(desc);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}

/// A Xen `PHYS32_ENTRY` note with a 4-byte descriptor.
pub fn phys32(entry: u32) -> Vec<u8> {
    note(
        XEN_ELFNOTE_NAME,
        XEN_ELFNOTE_PHYS32_ENTRY,
        &entry.to_le_bytes(),
    )
}

impl Builder {
    pub fn new(class: Class) -> Self {
        Self {
            class,
            e_type: ET_EXEC,
            machine: match class {
                Class::Elf32 => EM_386,
                Class::Elf64 => EM_X86_64,
            },
            entry: 0,
            phs: Vec::new(),
            shs: Vec::new(),
            payload: Vec::new(),
        }
    }

    /// Appends `bytes` to the payload (8-byte aligned); their payload offset.
    pub fn blob(&mut self, bytes: &[u8]) -> u64 {
        while !self.payload.len().is_multiple_of(8) {
            self.payload.push(0);
        }
        let off = self.payload.len() as u64;
        self.payload.extend_from_slice(bytes);
        off
    }

    /// A `PT_LOAD` at physical `paddr` with `bytes` and `memsz` bytes of memory.
    pub fn load(&mut self, paddr: u64, bytes: &[u8], memsz: u64) -> &mut Self {
        let off = self.blob(bytes);
        let vaddr = match self.class {
            Class::Elf32 => paddr,
            Class::Elf64 => paddr.wrapping_add(0xffff_ffff_8000_0000),
        };
        self.phs.push(Ph {
            p_type: PT_LOAD,
            flags: 5,
            offset: Off::Payload(off),
            vaddr,
            paddr,
            filesz: bytes.len() as u64,
            memsz,
            align: 0x1000,
        });
        self
    }

    /// A `PT_NOTE` segment holding `notes`.
    pub fn note_segment(&mut self, notes: &[u8]) -> &mut Self {
        let off = self.blob(notes);
        self.phs.push(Ph {
            p_type: PT_NOTE,
            flags: 4,
            offset: Off::Payload(off),
            vaddr: 0,
            paddr: 0,
            filesz: notes.len() as u64,
            memsz: notes.len() as u64,
            align: 4,
        });
        self
    }

    /// A `SHT_NOTE` section holding `notes`.
    pub fn note_section(&mut self, notes: &[u8]) -> &mut Self {
        let off = self.blob(notes);
        self.shs.push(Sh {
            sh_type: SHT_NOTE,
            offset: Off::Payload(off),
            size: notes.len() as u64,
            align: 4,
        });
        self
    }

    fn ehsize(&self) -> usize {
        match self.class {
            Class::Elf32 => 52,
            Class::Elf64 => 64,
        }
    }

    fn phentsize(&self) -> usize {
        match self.class {
            Class::Elf32 => 32,
            Class::Elf64 => 56,
        }
    }

    fn shentsize(&self) -> usize {
        match self.class {
            Class::Elf32 => 40,
            Class::Elf64 => 64,
        }
    }

    /// Where the program header table starts.
    pub fn phoff(&self) -> usize {
        self.ehsize()
    }

    /// Where the section header table starts.
    pub fn shoff(&self) -> usize {
        self.phoff() + self.phs.len() * self.phentsize()
    }

    /// Where the payload starts.
    pub fn payload_start(&self) -> usize {
        let sections = if self.shs.is_empty() {
            0
        } else {
            self.shs.len() + 1
        };
        self.shoff() + sections * self.shentsize()
    }

    fn resolve(&self, off: Off) -> u64 {
        match off {
            Off::Payload(o) => o + self.payload_start() as u64,
            Off::Abs(o) => o,
        }
    }

    pub fn build(&self) -> Vec<u8> {
        let mut v = Vec::new();
        let word = |v: &mut Vec<u8>, x: u64| match self.class {
            Class::Elf32 => v.extend_from_slice(&(x as u32).to_le_bytes()),
            Class::Elf64 => v.extend_from_slice(&x.to_le_bytes()),
        };
        v.extend_from_slice(b"\x7fELF");
        v.push(match self.class {
            Class::Elf32 => 1,
            Class::Elf64 => 2,
        });
        v.extend_from_slice(&[1, 1, 0]);
        v.resize(16, 0);
        v.extend_from_slice(&self.e_type.to_le_bytes());
        v.extend_from_slice(&self.machine.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        word(&mut v, self.entry);
        word(
            &mut v,
            if self.phs.is_empty() {
                0
            } else {
                self.phoff() as u64
            },
        );
        let sections = if self.shs.is_empty() {
            0
        } else {
            self.shs.len() + 1
        };
        word(
            &mut v,
            if sections == 0 {
                0
            } else {
                self.shoff() as u64
            },
        );
        v.extend_from_slice(&0u32.to_le_bytes()); // e_flags
        v.extend_from_slice(&(self.ehsize() as u16).to_le_bytes());
        v.extend_from_slice(&(self.phentsize() as u16).to_le_bytes());
        v.extend_from_slice(&(self.phs.len() as u16).to_le_bytes());
        v.extend_from_slice(&(self.shentsize() as u16).to_le_bytes());
        v.extend_from_slice(&(sections as u16).to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
        assert_eq!(v.len(), self.ehsize());
        for ph in &self.phs {
            let offset = self.resolve(ph.offset);
            match self.class {
                Class::Elf32 => {
                    for x in [
                        ph.p_type,
                        offset as u32,
                        ph.vaddr as u32,
                        ph.paddr as u32,
                        ph.filesz as u32,
                        ph.memsz as u32,
                        ph.flags,
                        ph.align as u32,
                    ] {
                        v.extend_from_slice(&x.to_le_bytes());
                    }
                }
                Class::Elf64 => {
                    v.extend_from_slice(&ph.p_type.to_le_bytes());
                    v.extend_from_slice(&ph.flags.to_le_bytes());
                    for x in [offset, ph.vaddr, ph.paddr, ph.filesz, ph.memsz, ph.align] {
                        v.extend_from_slice(&x.to_le_bytes());
                    }
                }
            }
        }
        if sections != 0 {
            v.resize(v.len() + self.shentsize(), 0);
        }
        for sh in &self.shs {
            let start = v.len();
            v.extend_from_slice(&1u32.to_le_bytes()); // sh_name
            v.extend_from_slice(&sh.sh_type.to_le_bytes());
            word(&mut v, 2); // sh_flags: SHF_ALLOC
            word(&mut v, 0); // sh_addr
            word(&mut v, self.resolve(sh.offset));
            word(&mut v, sh.size);
            v.extend_from_slice(&0u32.to_le_bytes()); // sh_link
            v.extend_from_slice(&0u32.to_le_bytes()); // sh_info
            word(&mut v, sh.align);
            word(&mut v, 0); // sh_entsize
            assert_eq!(v.len() - start, self.shentsize());
        }
        assert_eq!(v.len(), self.payload_start());
        v.extend_from_slice(&self.payload);
        v
    }
}

/// A typical PVH kernel: code at `paddr`, 0x3000 bytes of memory of which
/// 0x1800 come from the file, a `PHYS32_ENTRY` note at `paddr + 0x40` in a
/// `PT_NOTE` segment.
pub fn pvh_kernel(class: Class, paddr: u32) -> Builder {
    let mut b = Builder::new(class);
    b.entry = u64::from(paddr) + 0x40;
    let code: Vec<u8> = (0..0x1800u32).map(|i| (i * 7) as u8).collect();
    b.load(u64::from(paddr), &code, 0x3000);
    b.note_segment(&phys32(paddr + 0x40));
    b
}
