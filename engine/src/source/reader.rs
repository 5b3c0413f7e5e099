//! Reader threads and the consumer's end of them. A read runs on a thread of its own
//! (or, cut into consecutive pieces, on several), writing rows into [`Cells`] and
//! handing full batches over bounded channels, so a slow consumer stops the reader
//! instead of letting rows pile up.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::{Cells, RecordStream, RowStream, SourceError};
use crate::records::RecordBatch;
use crate::source::RowBatch;

/// What a reader sends: a batch, the end of its current piece (`Ok(None)`), or the
/// error that ended it.
type Message<B> = Result<Option<B>, SourceError>;

/// The consumer's end of a read cut into `pieces` consecutive pieces, piece `i` read by
/// worker `i % workers`: taking the workers' channels in turn gives the rows in the
/// order one reader would have read them. A single reader is one worker and one piece.
/// The explicit end of each piece tells "no more rows" from "the reader died".
pub(crate) struct ChannelStream<B> {
    workers: Vec<Receiver<Message<B>>>,
    pieces: usize,
    /// The piece being received; `pieces` once the stream has ended.
    piece: usize,
    table: String,
}

/// A reader thread's end: the row's cells, and the channel full batches leave by.
pub(crate) struct RowSink<C: Cells> {
    pub(crate) cells: C,
    tx: SyncSender<Message<C::Batch>>,
}

impl<C: Cells> RowSink<C> {
    /// Ends a row and sends the batch once it is full; `false` when the consumer has
    /// gone and the read should stop quietly.
    pub(crate) fn end_row(&mut self) -> Result<bool, SourceError> {
        self.cells.end_row().map_err(SourceError::Misfit)?;
        Ok(!self.cells.full() || self.tx.send(Ok(Some(self.cells.take()))).is_ok())
    }

    /// Ends the current piece: sends its last rows and the piece's end. `false` when
    /// the consumer has gone.
    pub(crate) fn end_piece(&mut self) -> bool {
        let rest = (self.cells.rows() > 0).then(|| self.cells.take());
        rest.is_none_or(|batch| self.tx.send(Ok(Some(batch))).is_ok()) && self.tx.send(Ok(None)).is_ok()
    }
}

/// Runs `read` on a thread of its own, writing rows into `cells`, and returns the
/// consumer's end. The channel is two batches deep: the next batch is read while this
/// one is used. After the last row come the rest of the rows and the explicit end, or
/// the error.
pub(crate) fn spawn_reader<C: Cells>(
    thread: String,
    table: &str,
    cells: C,
    read: impl FnOnce(&mut RowSink<C>) -> Result<(), SourceError> + Send + 'static,
) -> ChannelStream<C::Batch> {
    let read = move |sink: &mut RowSink<C>| {
        read(sink)?;
        sink.end_piece();
        Ok(())
    };
    spawn_pieces(&thread, table, 1, 2, vec![(cells, read)])
}

/// Runs one read cut into `pieces` consecutive pieces on a thread per worker, each
/// worker `w` reading pieces `w`, `w + workers`, … in order and ending each with
/// [`RowSink::end_piece`]. Each worker's channel holds `depth` batches, so a worker
/// reads ahead at most that far while the consumer takes an earlier piece.
pub(crate) fn spawn_pieces<C: Cells, R>(
    thread: &str,
    table: &str,
    pieces: usize,
    depth: usize,
    workers: Vec<(C, R)>,
) -> ChannelStream<C::Batch>
where
    R: FnOnce(&mut RowSink<C>) -> Result<(), SourceError> + Send + 'static,
{
    let several = workers.len() > 1;
    let receivers = workers
        .into_iter()
        .enumerate()
        .map(|(w, (cells, read))| {
            let (tx, rx) = sync_channel(depth);
            let name = if several { format!("{thread}-{w}") } else { thread.to_string() };
            std::thread::Builder::new()
                .name(name)
                .spawn(move || {
                    let mut sink = RowSink { cells, tx };
                    if let Err(e) = read(&mut sink) {
                        drop(sink.tx.send(Err(e))); // the consumer may have gone: nothing left to tell it
                    }
                })
                .expect("spawning a reader thread");
            rx
        })
        .collect();
    ChannelStream { workers: receivers, pieces, piece: 0, table: table.into() }
}

impl<B> ChannelStream<B> {
    fn recv(&mut self) -> Result<Option<B>, SourceError> {
        while self.piece < self.pieces {
            let worker = &self.workers[self.piece % self.workers.len()];
            match worker.recv() {
                Ok(Ok(Some(batch))) => return Ok(Some(batch)),
                Ok(Ok(None)) => self.piece += 1,
                Ok(Err(e)) => {
                    self.piece = self.pieces;
                    return Err(e);
                }
                // A reader that dies without the explicit end is an error, not an empty remainder.
                Err(_) => {
                    self.piece = self.pieces;
                    return Err(SourceError::ReaderGone { table: self.table.clone() });
                }
            }
        }
        Ok(None)
    }
}

impl RowStream for ChannelStream<RowBatch> {
    fn next_batch(&mut self) -> Result<Option<RowBatch>, SourceError> {
        self.recv()
    }
}

impl RecordStream for ChannelStream<RecordBatch> {
    fn next_records(&mut self) -> Result<Option<RecordBatch>, SourceError> {
        self.recv()
    }
}
