//! Time: the kernel's one-shot deadlines (sleeps, lock and wait timeouts), no periodic
//! tick. Owns [`timer`]'s deadline queue and [`clock`]'s tick/nanosecond arithmetic;
//! reading or programming a clock is the runtime's.
pub mod clock;
pub mod timer;
