//! Memory: temporary kernel mappings from a fixed pool ([`kmap`]). Building or loading
//! page tables is the runtime's.
pub mod kmap;
