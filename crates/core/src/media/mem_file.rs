//! An in-memory file: a `Write + Seek` handle on bytes that another handle can read while the
//! writer still holds it (the simulated-network tests' storage, and recorder unit tests).

use std::cell::RefCell;
use std::io::{self, Cursor, Seek, SeekFrom, Write};
use std::rc::Rc;

/// A handle on bytes that every clone shares.
#[derive(Clone, Default)]
pub struct MemFile(Rc<RefCell<Cursor<Vec<u8>>>>);

impl Write for MemFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for MemFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.0.borrow_mut().seek(pos)
    }
}

impl MemFile {
    /// A copy of the bytes written so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.borrow().get_ref().clone()
    }

    /// Takes the bytes out (without copying them), leaving the file empty.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(self.0.borrow_mut().get_mut())
    }
}
