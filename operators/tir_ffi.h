/*!
 * \file tir_ffi.h
 * \brief Reading, building and walking TVM TIR from a library that sees only tvm-ffi.
 *
 * The apache-tvm wheel ships no compiler headers, so this extension never names a TIR class.
 * It reads nodes by reflection (the type key that declares a field, and the field's name),
 * tests node types by their runtime type index, and builds nodes with the constructors TVM
 * registers as FFI globals (``prim.Cast``, ``tirx.BufferStore``, ...). Everything here is
 * resolved on first use, after TVM's own library has registered those types and globals.
 */
#ifndef MUTATENN_OPERATORS_TIR_FFI_H_
#define MUTATENN_OPERATORS_TIR_FFI_H_

#include <tvm/ffi/any.h>
#include <tvm/ffi/c_api.h>
#include <tvm/ffi/dtype.h>
#include <tvm/ffi/error.h>
#include <tvm/ffi/expected.h>
#include <tvm/ffi/extra/structural_mutate.h>
#include <tvm/ffi/extra/structural_visit.h>
#include <tvm/ffi/function.h>
#include <tvm/ffi/reflection/accessor.h>
#include <tvm/ffi/string.h>

#include <cstring>
#include <utility>

namespace mutatenn {

namespace ffi = tvm::ffi;

/*! \brief One registered node type, recognised by its exact runtime type index. */
class NodeType {
 public:
  explicit NodeType(const char* type_key) {
    TVMFFIByteArray key{type_key, std::strlen(type_key)};
    TVM_FFI_CHECK_SAFE_CALL(TVMFFITypeKeyToIndex(&key, &index_));
  }

  /*! \brief Whether \p value holds a node of exactly this type (None never matches). */
  bool Holds(ffi::AnyView value) const { return value.type_index() == index_; }

 private:
  int32_t index_;
};

/*! \brief Getter of one reflected field, named by the type that declares it. */
class Field {
 public:
  Field(const char* declaring_type, const char* name) : getter_(declaring_type, name) {}

  ffi::Any operator()(const ffi::ObjectRef& node) const { return getter_(node); }

 private:
  ffi::reflection::FieldGetter getter_;
};

/*! \brief Call the FFI global \p name (a TVM constructor or helper). */
template <typename... Args>
ffi::Any CallGlobal(const char* name, Args&&... args) {
  return ffi::Function::GetGlobalRequired(name)(std::forward<Args>(args)...);
}

/*! \brief The element type (with lanes) of a primitive expression: ``expr.ty.dtype``. */
inline DLDataType DTypeOf(const ffi::ObjectRef& expr) {
  static const Field ty("ir.Expr", "ty");
  static const Field dtype("ir.PrimType", "dtype");
  return dtype(ty(expr).cast<ffi::ObjectRef>()).cast<DLDataType>();
}

/*! \brief A constant of element type \p dtype (scalar), broadcast to \p lanes when above one. */
inline ffi::ObjectRef FloatConstant(DLDataType dtype, double value, int lanes) {
  dtype.lanes = 1;
  ffi::Any scalar = CallGlobal("ir.FloatImm", dtype, value, nullptr);
  if (lanes == 1) return scalar.cast<ffi::ObjectRef>();
  return CallGlobal("prim.Broadcast", scalar, lanes, nullptr).cast<ffi::ObjectRef>();
}

/*!
 * \brief The kernel code of a PrimFunc, and a walk over it.
 *
 * After TVM's lowering, ``MakePackedAPI`` wraps a host-callable kernel in argument-unpacking
 * code and marks the original body with a ``compute_scope`` attribute. Only code inside such
 * attributes is the kernel's; a function without one (S-TIR, device kernels) is kernel code
 * throughout. This matches ``mutatenn_passes.kernel_operators.base.map_kernel``, so sites are
 * numbered the same way on both sides of the FFI.
 */
class KernelWalk {
 public:
  /*!
   * \brief Rewrite every node of \p kind in the kernel code of \p func, in pre-order.
   * \param handler Called as ``handler(node)``; returns the replacement (or \p node itself).
   *        The walk does not descend into a handled node.
   * \return The rewritten function, or \p func itself when nothing changed.
   */
  template <typename Handler>
  static ffi::ObjectRef Map(const ffi::ObjectRef& func, const NodeType& kind, Handler handler) {
    static const NodeType attr_stmt("tirx.AttrStmt");
    static const Field attr_key("tirx.AttrStmt", "attr_key");
    int scope_depth = HasComputeScope(func) ? 0 : 1;
    auto callback = [&](ffi::AnyView value,
                        ffi::StructuralMutatorObj* mutator) -> ffi::Expected<ffi::Any> {
      if (attr_stmt.Holds(value) &&
          attr_key(value.cast<ffi::ObjectRef>()).cast<ffi::String>() == "compute_scope") {
        ++scope_depth;
        ffi::Expected<ffi::Any> result = Forward(mutator->DefaultMutateExpected(value));
        --scope_depth;
        return result;
      }
      if (scope_depth > 0 && kind.Holds(value)) {
        return ffi::Any(handler(value.cast<ffi::ObjectRef>()));
      }
      return Forward(mutator->DefaultMutateExpected(value));
    };
    return ffi::StructuralMutate(func, callback).template cast<ffi::ObjectRef>();
  }

 private:
  static bool HasComputeScope(const ffi::ObjectRef& func) {
    static const NodeType attr_stmt("tirx.AttrStmt");
    static const Field attr_key("tirx.AttrStmt", "attr_key");
    auto probe = [](ffi::AnyView value) -> ffi::Expected<ffi::WalkResult> {
      if (attr_stmt.Holds(value) &&
          attr_key(value.cast<ffi::ObjectRef>()).cast<ffi::String>() == "compute_scope") {
        return ffi::WalkResult::Interrupt();
      }
      return ffi::WalkResult::Advance();
    };
    return ffi::StructuralWalk<ffi::WalkOrder::kPreOrder>(func, probe).has_value();
  }

  static ffi::Expected<ffi::Any> Forward(ffi::Expected<ffi::UnchangedOr<ffi::Any>> result) {
    if (result.is_err()) return ffi::Unexpected(std::move(result).error());
    return ffi::Any(std::move(result).value());
  }
};

}  // namespace mutatenn

#endif  // MUTATENN_OPERATORS_TIR_FFI_H_
