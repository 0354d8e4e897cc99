//! The fixed cases, one module per rule of the contract.

mod bounded;
mod c01_round_trip;
mod c02_upsert;
mod c03_order;
mod c04_paging;
mod c05_filter;
mod c06_bad_filter;
mod c07_delete;
mod c08_concurrency;
mod c09_sharing;
mod c10_durability;
mod c11_errors;

pub use bounded::*;
pub use c01_round_trip::*;
pub use c02_upsert::*;
pub use c03_order::*;
pub use c04_paging::*;
pub use c05_filter::*;
pub use c06_bad_filter::*;
pub use c07_delete::*;
pub use c08_concurrency::*;
pub use c09_sharing::*;
pub use c10_durability::*;
pub use c11_errors::*;
