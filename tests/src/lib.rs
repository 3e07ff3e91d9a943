//! placeholder
pub mod apiserver;
pub mod terraform;
