//! Queue operations of the [`Manager`].

use super::Manager;
use crate::error::Result;
use pgqueue_domain::{Error as DomainError, Page, Queue, QueueMeta, QueueName, StatusCount, Task};
use pgqueue_ports::Listing;

impl Manager {
    /// Creates the queue with defaults if it does not exist, then applies the given fields.
    pub async fn register_queue(&self, meta: QueueMeta) -> Result<Queue> {
        let (name, patch) = meta.validate_new()?;
        Ok(self
            .store
            .register_queue(&self.namespace, &name, &patch)
            .await?)
    }

    /// Creates a queue; conflict if it exists.
    pub async fn create_queue(&self, meta: QueueMeta) -> Result<Queue> {
        let (name, patch) = meta.validate_new()?;
        Ok(self
            .store
            .create_queue(&self.namespace, &name, &patch)
            .await?)
    }

    /// The queue named `name`.
    pub async fn get_queue(&self, name: &str) -> Result<Queue> {
        let name = QueueName::parse(name)?;
        Ok(self.store.get_queue(&self.namespace, &name).await?)
    }

    /// Changes only the given fields; `queue` renames (its tasks follow).
    pub async fn update_queue(&self, name: &str, meta: QueueMeta) -> Result<Queue> {
        let name = QueueName::parse(name)?;
        let patch = meta.validate()?;
        if patch.is_empty() {
            return Err(DomainError::NoPatchValues.into());
        }
        Ok(self
            .store
            .update_queue(&self.namespace, &name, &patch)
            .await?)
    }

    /// Deletes the queue and its tasks; returns the deleted queue.
    pub async fn delete_queue(&self, name: &str) -> Result<Queue> {
        let name = QueueName::parse(name)?;
        Ok(self.store.delete_queue(&self.namespace, &name).await?)
    }

    /// Queues ordered by name.
    pub async fn list_queues(&self, page: Page) -> Result<Listing<Queue>> {
        Ok(self.store.list_queues(&self.namespace, page).await?)
    }

    /// Deletes the queue's released, failed and expired tasks now and returns them.
    pub async fn clean_queue(&self, name: &str) -> Result<Vec<Task>> {
        let name = QueueName::parse(name)?;
        Ok(self.store.clean_queue(&self.namespace, &name).await?)
    }

    /// Task counts per queue and status, zeros included.
    pub async fn queue_statuses(&self) -> Result<Vec<StatusCount>> {
        Ok(self.store.queue_statuses(&self.namespace).await?)
    }
}
