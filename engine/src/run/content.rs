//! Which resources a run exports (`content`: tables, attachments or both) and the blob
//! store the attachment resources read.

use std::sync::Arc;

use crate::job::{Content, Job, ResourceSpec};
use crate::runtime::{LoadError, Plugin};
use crate::source::{BlobError, BlobStore, DirBlobStore};

/// Why a job's attachments cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("content = \"{content}\" leaves nothing to export: {why}")]
    NothingSelected { content: &'static str, why: String },
    #[error("resource `{resource}` exports attachments, but the job has no blob store; set `[source] blobs = \"path/to/blobs\"` or `\"s3://bucket/prefix\"`")]
    NoBlobStore { resource: String },
    #[error("cannot open the blob store: {0}")]
    Store(#[from] BlobError),
    #[error("cannot open the blob store: {0}")]
    S3(#[from] crate::s3::S3Error),
}

/// A resource the run exports, with its plugin; `None` when the plugin did not load
/// (under `on_error = "continue"` such a resource fails alone; see [`Selection::unloaded`]).
pub struct Selected {
    pub spec: ResourceSpec,
    pub plugin: Option<Plugin>,
}

impl Selected {
    /// Whether the resource exports attachments (a plugin that failed to load exports
    /// nothing, and is listed among the tables).
    pub fn exports_attachments(&self) -> bool {
        self.plugin.as_ref().is_some_and(|p| p.uses_blobs)
    }
}

/// The resources a run exports, in job order, and why some of their plugins did not load
/// (by index into `resources`).
pub struct Selection {
    pub resources: Vec<Selected>,
    pub unloaded: Vec<(usize, LoadError)>,
}

/// The resources `job.content` keeps, in job order: table resources, attachment
/// resources (plugins that import the blob store), or both. A resource whose plugin did
/// not load is kept whatever `content` says: it is reported failed.
pub fn select(job: &Job, plugins: Vec<Result<Plugin, LoadError>>) -> Result<Selection, ContentError> {
    let mut selection = Selection { resources: Vec::new(), unloaded: Vec::new() };
    for (spec, plugin) in job.resources.iter().zip(plugins) {
        let plugin = match plugin {
            Ok(plugin) if !job.content.includes(plugin.uses_blobs) => continue,
            Ok(plugin) => Some(plugin),
            Err(error) => {
                selection.unloaded.push((selection.resources.len(), error));
                None
            }
        };
        selection.resources.push(Selected { spec: spec.clone(), plugin });
    }
    if selection.resources.is_empty() {
        let (content, why) = match job.content {
            Content::Attachments => ("attachments", "no resource exports attachments; add `[[resource]] name = \"attachments\"`".to_string()),
            Content::Tables => ("tables", "every resource exports attachments; add a table resource or set content = \"both\"".to_string()),
            Content::Both => ("both", "the job lists no resources".to_string()),
        };
        return Err(ContentError::NothingSelected { content, why });
    }
    Ok(selection)
}

/// The job's blob store, opened only when a selected resource exports attachments.
pub fn blob_store(job: &Job, selected: &[Selected]) -> Result<Option<Arc<dyn BlobStore>>, ContentError> {
    let Some(first) = selected.iter().find(|s| s.exports_attachments()) else { return Ok(None) };
    if let Some(url) = &job.source.blobs_s3 {
        return Ok(Some(Arc::new(crate::s3::S3BlobStore::new(crate::s3::S3::connect(url, &job.s3)?))));
    }
    let Some(dir) = &job.source.blobs else {
        return Err(ContentError::NoBlobStore { resource: first.spec.name.clone() });
    };
    Ok(Some(Arc::new(DirBlobStore::open(dir)?)))
}
