//! Which interrupt handler serves which line: the registration API of guest-rt's
//! interrupt layer. It refuses nonsense with an error instead of wiring it: a line that is
//! not an SPI, a line the partition does not own (not in its DTB), or a line registered
//! twice.
//!
//! Portable and host-tested; holds handlers as plain values of type `H` (a function
//! pointer on target, anything in tests). Never allocates.

/// Most lines one partition registers handlers for.
pub const MAX_HANDLERS: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqError {
    /// SGIs and PPIs (INTID < 32) are the kernel's own; INTIDs >= 1020 do not exist.
    NotAnSpi(u32),
    /// The partition's DTB lists no device raising this line.
    NotOwned(u32),
    AlreadyRegistered(u32),
}

pub struct IrqRegistry<H: Copy> {
    owned: [u32; MAX_HANDLERS],
    owned_len: usize,
    handlers: [Option<(u32, H)>; MAX_HANDLERS],
}

impl<H: Copy> IrqRegistry<H> {
    /// A registry for a partition owning the SPIs `owned` (extra ones are ignored).
    pub fn new(owned: &[u32]) -> Self {
        let mut list = [0; MAX_HANDLERS];
        let n = owned.len().min(MAX_HANDLERS);
        list[..n].copy_from_slice(&owned[..n]);
        Self {
            owned: list,
            owned_len: n,
            handlers: [None; MAX_HANDLERS],
        }
    }

    pub fn register(&mut self, intid: u32, handler: H) -> Result<(), IrqError> {
        if !(32..1020).contains(&intid) {
            return Err(IrqError::NotAnSpi(intid));
        }
        if !self.owned[..self.owned_len].contains(&intid) {
            return Err(IrqError::NotOwned(intid));
        }
        if self.handler(intid).is_some() {
            return Err(IrqError::AlreadyRegistered(intid));
        }
        // At most one handler per owned line, and at most MAX_HANDLERS owned lines: a free
        // slot always exists here.
        if let Some(slot) = self.handlers.iter_mut().find(|h| h.is_none()) {
            *slot = Some((intid, handler));
        }
        Ok(())
    }

    pub fn handler(&self, intid: u32) -> Option<H> {
        self.handlers
            .iter()
            .flatten()
            .find(|(line, _)| *line == intid)
            .map(|(_, h)| *h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_owned_spis_once() {
        let mut r = IrqRegistry::new(&[34, 40]);
        assert_eq!(r.register(34, 'a'), Ok(()));
        assert_eq!(r.handler(34), Some('a'));
        assert_eq!(r.register(34, 'b'), Err(IrqError::AlreadyRegistered(34)));
        assert_eq!(r.handler(34), Some('a'), "the first handler stays");
        assert_eq!(r.register(40, 'c'), Ok(()));
        assert_eq!(r.handler(41), None);
    }

    #[test]
    fn refuses_private_unknown_and_foreign_lines() {
        let mut r = IrqRegistry::new(&[34]);
        assert_eq!(r.register(27, 'x'), Err(IrqError::NotAnSpi(27)));
        assert_eq!(r.register(1020, 'x'), Err(IrqError::NotAnSpi(1020)));
        assert_eq!(r.register(33, 'x'), Err(IrqError::NotOwned(33)));
        assert_eq!(r.handler(33), None);
    }

    #[test]
    fn every_owned_line_can_have_its_handler() {
        let owned: [u32; MAX_HANDLERS] = core::array::from_fn(|i| 32 + i as u32);
        let mut r = IrqRegistry::new(&owned);
        for &line in &owned {
            r.register(line, line).unwrap();
        }
        assert!(owned.iter().all(|&line| r.handler(line) == Some(line)));
    }
}
