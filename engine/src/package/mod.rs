//! Turning encoded records into a published snapshot: compressed, hashed files in a
//! staging directory, the manifest last, then an atomic rename.

pub mod archive;
mod confined;
mod delivery_record;
pub mod encrypt;
mod extsort;
pub mod layout;
mod manifest;
mod output_file;
pub mod par_gzip;
pub mod relations;
mod resource_files;
pub mod shards;
pub mod sign;
pub mod spool;
mod staging;
pub mod verify;

pub use confined::ConfinedDir;
pub use delivery_record::{DELIVERY_RECORD, DeliveredObject, DeliveryRecord};
pub use layout::{MANIFEST, ProcessId, SnapshotLayout};
pub use manifest::{
    ATTACHMENT_KIND, ArchiveEntry, AsOfEntry, ConsistencyEntry, EncryptionEntry, FileEntry, MANIFEST_FORMAT_VERSION, Manifest, Plaintext,
    PluginEntry, ReferenceEntry, ResourceEntry, ResourceFailure, StageTimes, Status, WindowEntry, place_in_parts,
};
pub use output_file::{FileStats, OutputFile};
pub use resource_files::{ResourceFiles, Split, WrittenFile};
pub use staging::{Staging, StagingError};
