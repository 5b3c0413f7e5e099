//! ferry's integration tests: one binary, modules by theme. Plugins used here are built
//! from source by the normal build (`plugins/testing/`), never committed.

mod attachments;
mod bad_input;
mod catalog;
mod common;
mod demo_platform;
mod end_to_end;
mod formats;
mod hardening;
mod hostile;
mod inspect;
mod integrity;
mod job_errors;
mod notifications;
mod packaging;
mod page;
mod parquet;
mod plugin_authors;
mod postgres;
mod s3;
mod sandbox;
mod schedules;
mod servers;
mod service;
mod shards;
mod trust;
mod windows;
