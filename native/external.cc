// The pointer inside a V8 External that Node itself created (not through N-API).
// N-API's napi_get_value_external only unwraps externals made by
// napi_create_external (Node 20 wraps their pointer in a record of its own), so
// for Node's SecureContext `_external` (its SSL_CTX*) we read the External with
// V8's API. A napi_value is a v8::Local<v8::Value> by another name: Node's N-API
// converts between the two with a plain copy of the handle, as done here.
#include <cstring>
#include <node_api.h>
#include <v8.h>

static v8::Local<v8::Value> as_local(napi_value value) {
  v8::Local<v8::Value> local;
  static_assert(sizeof(local) == sizeof(value), "a napi_value is a v8::Local");
  std::memcpy(static_cast<void *>(&local), &value, sizeof(value));
  return local;
}

extern "C" void *mesh_external_pointer(napi_value value) {
  v8::Local<v8::Value> local = as_local(value);
  if (local.IsEmpty() || !local->IsExternal()) return nullptr;
  return local.As<v8::External>()->Value();
}

// A hint that memory is short: V8 starts an incremental, memory-reducing
// collection that runs in slices over the following turns (no long pause).
extern "C" void mesh_memory_pressure(void) {
  v8::Isolate *isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kModerate);
}

// The pointer Node keeps in an object's internal field `index` (a BaseObject's
// is field 1, kSlot): read to recognise which native TLS connection a TLSWrap
// handle is. nullptr when the value is not an object with such a field.
extern "C" void *mesh_object_slot(napi_value value, int index) {
  v8::Local<v8::Value> local = as_local(value);
  if (local.IsEmpty() || !local->IsObject()) return nullptr;
  v8::Local<v8::Object> object = local.As<v8::Object>();
  if (object->InternalFieldCount() <= index) return nullptr;
  return object->GetAlignedPointerFromInternalField(index);
}
