//! The fixed cases, one module per rule of the contract.

mod bounded;
mod c01_round_trip;
mod c02_upsert;
mod c03_order;
mod c04_paging;
mod c05_filter;
mod c05_more_filters;
mod c06_bad_filter;
mod c07_delete;
mod c08_concurrency;
mod c09_sharing;
mod c10_durability;
mod c11_errors;
mod c12_merge;
mod c13_text;
mod c14_grouped;
mod c15_bulk_delete;

pub use bounded::*;
pub use c01_round_trip::*;
pub use c02_upsert::*;
pub use c03_order::*;
pub use c04_paging::*;
pub use c05_filter::*;
pub use c05_more_filters::*;
pub use c06_bad_filter::*;
pub use c07_delete::*;
pub use c08_concurrency::*;
pub use c09_sharing::*;
pub use c10_durability::*;
pub use c11_errors::*;
pub use c12_merge::*;
pub use c13_text::*;
pub use c14_grouped::*;
pub use c15_bulk_delete::*;
