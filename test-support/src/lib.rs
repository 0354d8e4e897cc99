#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod postgres;
mod redis;
mod redis_cluster;

pub use postgres::{PostgresServer, postgres_url, shared_postgres};
pub use redis::{REDIS_URL_ENV, RedisServer, redis_url, shared_redis};
pub use redis_cluster::{RedisCluster, shared_redis_cluster};
