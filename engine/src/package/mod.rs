//! Turning encoded records into a published snapshot: compressed, hashed files in a
//! staging directory, the manifest last, then an atomic rename.

pub mod archive;
pub mod layout;
mod delivery_record;
mod manifest;
pub mod verify;
pub mod relations;
mod extsort;
mod output_file;
pub mod par_gzip;
mod resource_files;
mod staging;

pub use manifest::{place_in_parts, ATTACHMENT_KIND, ArchiveEntry, AsOfEntry, ConsistencyEntry, FileEntry, Manifest, PluginEntry, ReferenceEntry, ResourceEntry, ResourceFailure, Status, StageTimes, WindowEntry, MANIFEST_FORMAT_VERSION};
pub use delivery_record::{DELIVERY_RECORD, DeliveredObject, DeliveryRecord};
pub use output_file::{FileStats, OutputFile};
pub use resource_files::{ResourceFiles, Split, WrittenFile};
pub use layout::{MANIFEST, ProcessId, SnapshotLayout};
pub use staging::{Staging, StagingError};
