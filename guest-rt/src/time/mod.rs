//! Time: the kernel's one-shot deadlines (sleeps, lock and wait timeouts), no periodic
//! tick. Owns [`timer`]'s deadline queue; reading or programming a clock is the runtime's.
pub mod timer;
