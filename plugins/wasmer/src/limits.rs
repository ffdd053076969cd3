//! A memory cap for Wasmer: tunables that lower every linear memory's maximum to the
//! cap, so `memory.grow` past it fails inside the program (as in wasmtime's limiter),
//! and refuse a module whose initial memory is already larger.

use std::ptr::NonNull;

use wasmer::sys::vm::{VMMemory, VMMemoryDefinition, VMTable, VMTableDefinition};
use wasmer::sys::{BaseTunables, Tunables};
use wasmer::{MemoryError, MemoryStyle, MemoryType, Pages, TableStyle, TableType};

pub struct MemoryCap {
    max_pages: Pages,
    base: BaseTunables,
}

impl MemoryCap {
    /// A cap of `pages` (from [`shim_wasm_abi::plugin::MemoryCap`]).
    pub fn new(pages: u64) -> Self {
        Self {
            max_pages: Pages(pages.min(u64::from(wasmer::WASM_MAX_PAGES)) as u32),
            base: BaseTunables::new(),
        }
    }

    fn capped(&self, ty: &MemoryType) -> Result<MemoryType, MemoryError> {
        if ty.minimum > self.max_pages {
            return Err(MemoryError::Generic(format!(
                "the module needs {} pages of memory at start but max_memory_bytes allows {} pages",
                ty.minimum.0, self.max_pages.0
            )));
        }
        let maximum = ty.maximum.map_or(self.max_pages, |max| max.min(self.max_pages));
        Ok(MemoryType { maximum: Some(maximum), ..*ty })
    }
}

impl Tunables for MemoryCap {
    fn memory_style(&self, memory: &MemoryType) -> MemoryStyle {
        // The style is chosen for the capped type, so the compiled code and the memory
        // created for it agree.
        self.base.memory_style(&self.capped(memory).unwrap_or(*memory))
    }

    fn table_style(&self, table: &TableType) -> TableStyle {
        self.base.table_style(table)
    }

    fn create_host_memory(&self, ty: &MemoryType, style: &MemoryStyle) -> Result<VMMemory, MemoryError> {
        self.base.create_host_memory(&self.capped(ty)?, style)
    }

    unsafe fn create_vm_memory(
        &self,
        ty: &MemoryType,
        style: &MemoryStyle,
        vm_definition_location: NonNull<VMMemoryDefinition>,
    ) -> Result<VMMemory, MemoryError> {
        // SAFETY: forwarded unchanged from wasmer, which upholds the contract.
        unsafe { self.base.create_vm_memory(&self.capped(ty)?, style, vm_definition_location) }
    }

    fn create_host_table(&self, ty: &TableType, style: &TableStyle) -> Result<VMTable, String> {
        self.base.create_host_table(ty, style)
    }

    unsafe fn create_vm_table(
        &self,
        ty: &TableType,
        style: &TableStyle,
        vm_definition_location: NonNull<VMTableDefinition>,
    ) -> Result<VMTable, String> {
        // SAFETY: forwarded unchanged from wasmer, which upholds the contract.
        unsafe { self.base.create_vm_table(ty, style, vm_definition_location) }
    }
}
