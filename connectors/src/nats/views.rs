//! The view feed's transport: process 0 of the worker processes publishes
//! each tick (encoded by the pipeline's `replica` module) on
//! `<prefix>.views` of the stream `<NAME>_VIEWS`; API nodes read it from
//! its first message. A new generation purges the older ones once its
//! first message is stored, so the stream holds one generation's feed.

use async_nats::jetstream::{self, consumer, stream};
use futures::{Stream, StreamExt};

use crate::bus::BusError;
use crate::nats::{NatsConfig, connect_jetstream, nats_err};

/// The view feed's stream.
pub struct ViewFeed {
    js: jetstream::Context,
    stream: stream::Stream,
    subject: String,
}

impl ViewFeed {
    /// Connects and creates the feed's stream when it is missing.
    pub async fn connect(config: &NatsConfig) -> Result<ViewFeed, BusError> {
        let js = connect_jetstream(config).await?;
        let subject = format!("{}.views", config.stream.to_ascii_lowercase());
        let stream = js
            .get_or_create_stream(stream::Config {
                name: format!("{}_VIEWS", config.stream),
                subjects: vec![subject.clone()],
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(nats_err)?;
        Ok(ViewFeed { js, stream, subject })
    }

    /// Publishes one message and returns its stream sequence once stored.
    pub async fn publish(&self, payload: Vec<u8>) -> Result<u64, BusError> {
        let ack = self.js.publish(self.subject.clone(), payload.into()).await.map_err(nats_err)?;
        Ok(ack.await.map_err(nats_err)?.sequence)
    }

    /// Removes every message before `sequence`: older generations'.
    pub async fn purge_before(&self, sequence: u64) -> Result<(), BusError> {
        // The server reads a purge up to sequence 1 as a purge of everything.
        if sequence > 1 {
            self.stream.purge().sequence(sequence).await.map_err(nats_err)?;
        }
        Ok(())
    }

    /// Every message of the feed from the first the stream holds, in order,
    /// then each as it is published.
    pub async fn follow(&self) -> Result<impl Stream<Item = Result<Vec<u8>, BusError>> + use<>, BusError> {
        let consumer = self
            .stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: self.subject.clone(),
                deliver_policy: consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(nats_err)?;
        let messages = consumer.messages().await.map_err(nats_err)?;
        Ok(messages.map(|message| message.map(|m| m.payload.to_vec()).map_err(nats_err)))
    }
}
