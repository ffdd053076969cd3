//! Task events published to containerd (`TTRPC_ADDRESS`). A failed publish is logged,
//! never fatal: containerd also learns exits from Wait.

use containerd_shim::Context;
use containerd_shim::protos::events::task::{TaskCreate, TaskDelete, TaskExit, TaskOOM, TaskStart};
use containerd_shim::protos::protobuf::MessageDyn;
use containerd_shim::protos::topics::*;

use super::{Exit, TaskService};

fn publish(service: &TaskService, topic: &str, event: Box<dyn MessageDyn>) {
    if let Err(e) = service.publisher.publish(Context::default(), topic, &service.namespace, event) {
        tracing::warn!(topic, "cannot publish event to containerd: {e}");
    }
}

pub fn task_create(service: &TaskService, id: &str, bundle: &str, pid: u32) {
    let mut event = TaskCreate::new();
    event.container_id = id.to_string();
    event.bundle = bundle.to_string();
    event.pid = pid;
    publish(service, TASK_CREATE_EVENT_TOPIC, Box::new(event));
}

pub fn task_start(service: &TaskService, id: &str, pid: u32) {
    let mut event = TaskStart::new();
    event.container_id = id.to_string();
    event.pid = pid;
    publish(service, TASK_START_EVENT_TOPIC, Box::new(event));
}

pub fn task_exit(service: &TaskService, id: &str, pid: u32, exit: &Exit) {
    let mut event = TaskExit::new();
    event.container_id = id.to_string();
    event.id = id.to_string();
    event.pid = pid;
    event.exit_status = exit.status;
    event.exited_at = Some(exit.at.clone()).into();
    publish(service, TASK_EXIT_EVENT_TOPIC, Box::new(event));
}

pub fn task_delete(service: &TaskService, id: &str, pid: u32, exit: &Exit) {
    let mut event = TaskDelete::new();
    event.container_id = id.to_string();
    event.id = id.to_string();
    event.pid = pid;
    event.exit_status = exit.status;
    event.exited_at = Some(exit.at.clone()).into();
    publish(service, TASK_DELETE_EVENT_TOPIC, Box::new(event));
}

pub fn task_oom(service: &TaskService, id: &str) {
    let mut event = TaskOOM::new();
    event.container_id = id.to_string();
    publish(service, TASK_OOM_EVENT_TOPIC, Box::new(event));
}
