#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod postgres;
mod redis;

pub use postgres::{PostgresServer, postgres_url, shared_postgres};
pub use redis::{REDIS_URL_ENV, RedisServer, redis_url, shared_redis};
