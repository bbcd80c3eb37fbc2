/*!
 * \file arith_types.cc
 * \brief The Arithmetic Types operators: float32 stores round-trip through a narrower type.
 *
 * A selected ``BufferStore`` of a float32 value ``v`` (scalar or vector) stores
 * ``cast(float32, cast(T, v))`` instead, modelling a compiler that computes or keeps a value in
 * the wrong arithmetic type:
 *  - float16: IEEE rounding to nearest even; out-of-range values become infinities, NaN stays
 *    NaN. A store of a *constant* beyond float16's range (max-pooling's -FLT_MAX init) is
 *    skipped: TVM's constant folder rejects such a cast instead of producing an infinity. So
 *    is every site of a function bound to the ``c`` target: TVM's C backend writes the cast
 *    as ``(half)``, which no C compiler knows.
 *  - bfloat16: the same rounding, written out on the float32 bits as TVM's own bf16
 *    legalization does (``(bits + 0x7FFF + lsb) & 0xFFFF0000``, NaN kept), because after
 *    lowering bf16 storage is already legalized and a bf16 cast no longer reaches codegen.
 *    In a function built for CUDA a stored constant is rounded here, to a constant: TVM's
 *    CUDA backend reads a value's bits through its address (``*(uint*)&x``), which a literal
 *    does not have. (Elsewhere it stays a round trip: TVM's C backend cannot print the
 *    infinity that -FLT_MAX rounds to.)
 *  - int8/int16/int32: a bare ``fptosi`` of an out-of-range or NaN value is poison in LLVM and
 *    undefined behaviour in C, so the result would depend on the backend. The value is
 *    saturated first, with the semantics of LLVM's ``llvm.fptosi.sat`` and Rust's ``as``:
 *    truncation toward zero, clamping to T's range (for int32 to 2147483520, the largest
 *    float32 not above INT32_MAX), NaN to 0.
 * ``v`` is bound once with a ``Let`` wherever it is used twice. In a function built for CUDA,
 * a vector store (float32x2, x4: vectorized loops after lowering) is skipped for the integer
 * and bfloat16 round trips: TVM's CUDA backend writes their NaN test ``v != v`` on the vector
 * type, which CUDA's float2/float4 do not define, so nvcc rejects the kernel.
 *
 * Sites are numbered in pre-order over the kernel code (see tir_ffi.h), per PrimFunc.
 *
 * Globals registered:
 *  - ``mutatenn.ArithTypeSites(func, dtype)``: one ``[kind, description, skip_reason]`` per
 *    site (skip_reason empty when the site can be rewritten);
 *  - ``mutatenn.StoreRoundTripFunc(func, dtype, positions)``: ``func`` with those sites
 *    rewritten;
 *  - ``mutatenn.transform.StoreRoundTrip(dtype, sites)``: a TVM module pass rewriting, in each
 *    PrimFunc named in ``sites`` (name -> positions; None means every site of every PrimFunc),
 *    the given positions. It is a module pass, made by TVM's ``transform.MakeModulePass``,
 *    because sites are keyed by kernel name and a PrimFunc pass is not told its function's
 *    name.
 */
#include <tvm/ffi/container/array.h>
#include <tvm/ffi/container/map.h>
#include <tvm/ffi/optional.h>
#include <tvm/ffi/rvalue_ref.h>
#include <tvm/ffi/reflection/registry.h>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "tir_ffi.h"

namespace mutatenn {
namespace {

/*! \brief How a value is narrowed to the round trip's type T. */
enum class Narrowing { kFloatCast, kBFloat16Bits, kSaturatingIntCast };

/*! \brief The round trip's type T, and the clamp bounds an integer T needs. */
struct RoundTripType {
  DLDataType dtype;
  Narrowing narrowing;
  double lowest;
  double highest;
};

RoundTripType ParseTarget(const ffi::String& name) {
  DLDataType dtype = ffi::StringToDLDataType(name);
  if (name == "float16") return {dtype, Narrowing::kFloatCast, -65504.0, 65504.0};
  if (name == "bfloat16") return {dtype, Narrowing::kBFloat16Bits, 0, 0};
  if (name == "int8") return {dtype, Narrowing::kSaturatingIntCast, -128.0, 127.0};
  if (name == "int16") return {dtype, Narrowing::kSaturatingIntCast, -32768.0, 32767.0};
  if (name == "int32") {
    return {dtype, Narrowing::kSaturatingIntCast, -2147483648.0, 2147483520.0};
  }
  TVM_FFI_THROW(ValueError) << "mutatenn: no round trip through " << name
                            << " (float16, bfloat16, int32, int16 or int8)";
  TVM_FFI_UNREACHABLE();
}

bool IsFloat32(DLDataType dtype) { return dtype.code == kDLFloat && dtype.bits == 32; }

DLDataType WithLanes(DLDataType dtype, int lanes) {
  dtype.lanes = lanes;
  return dtype;
}

/*! \brief The kind of the target \p func is bound to ("c", "llvm", ...), or "" if none. */
std::string TargetKindOf(const ffi::ObjectRef& func) {
  static const Field attrs("ir.BaseFunc", "attrs");
  static const Field dict("ir.DictAttrs", "__dict__");
  static const Field kind("target.Target", "kind");
  static const Field kind_name("target.TargetKind", "name");
  auto func_attrs = attrs(func).cast<ffi::Optional<ffi::ObjectRef>>();
  if (!func_attrs.has_value()) return "";
  auto entries = dict(func_attrs.value()).cast<ffi::Map<ffi::String, ffi::Any>>();
  auto target = entries.find("target");
  if (target == entries.end()) return "";
  ffi::ObjectRef target_kind = kind((*target).second.cast<ffi::ObjectRef>()).cast<ffi::ObjectRef>();
  return kind_name(target_kind).cast<ffi::String>();
}

/*!
 * \brief Why the store of \p value, in a function for target kind \p target_kind, cannot
 *        round-trip through \p target; "" if it can.
 */
std::string SkipReason(const ffi::ObjectRef& value, const RoundTripType& target,
                       const std::string& target_kind) {
  static const NodeType cast("prim.Cast");
  static const NodeType float_imm("ir.FloatImm");
  static const Field cast_value("prim.Cast", "value");
  static const Field imm_value("ir.FloatImm", "value");
  std::string type = ffi::DLDataTypeToString(target.dtype);
  if (cast.Holds(value)) {
    ffi::ObjectRef inner = cast_value(value).cast<ffi::ObjectRef>();
    DLDataType inner_type = DTypeOf(inner);
    if (cast.Holds(inner) && inner_type.code == target.dtype.code &&
        inner_type.bits == target.dtype.bits) {
      return "the stored value already round-trips through " + type;
    }
  }
  if (target.narrowing == Narrowing::kFloatCast && target_kind == "c") {
    return "TVM's C backend writes a float16 cast as (half), a type C does not have";
  }
  if (target.narrowing != Narrowing::kFloatCast && target_kind == "cuda" &&
      DTypeOf(value).lanes > 1) {
    return "TVM's CUDA backend writes the NaN test of a vector value as v != v, which "
           "CUDA's vector types do not define";
  }
  if (target.narrowing == Narrowing::kFloatCast && float_imm.Holds(value)) {
    double constant = imm_value(value).cast<double>();
    if (!(constant >= target.lowest && constant <= target.highest)) {
      return "the stored value is the constant " + std::to_string(constant) + ", beyond " +
             type + "'s range: TVM's constant folder rejects that cast";
    }
  }
  return "";
}

ffi::Any IntConstant(DLDataType dtype, int64_t value) {
  ffi::Any scalar = CallGlobal("ir.IntImm", WithLanes(dtype, 1), value, nullptr);
  if (dtype.lanes == 1) return scalar;
  return CallGlobal("prim.Broadcast", scalar, static_cast<int>(dtype.lanes), nullptr);
}

/*! \brief float32 \p v rounded to bfloat16 precision, nearest even, on its bits. */
ffi::Any BFloat16Rounded(const ffi::Any& v, DLDataType wide) {
  DLDataType bits = WithLanes(DLDataType{kDLUInt, 32, 1}, wide.lanes);
  ffi::Any u = CallGlobal("tirx.reinterpret", CallGlobal("ir.PrimType", bits), v, nullptr);
  ffi::Any lsb = CallGlobal(
      "prim.BitwiseAnd", CallGlobal("prim.RShift", u, IntConstant(bits, 16), nullptr),
      IntConstant(bits, 1), nullptr);
  ffi::Any biased = CallGlobal(
      "prim.Add", CallGlobal("prim.Add", u, IntConstant(bits, 0x7FFF), nullptr), lsb, nullptr);
  ffi::Any rounded = CallGlobal("prim.BitwiseAnd", biased, IntConstant(bits, 0xFFFF0000LL),
                                nullptr);
  ffi::Any back = CallGlobal("tirx.reinterpret", CallGlobal("ir.PrimType", wide), rounded, nullptr);
  return CallGlobal("prim.Select", CallGlobal("tirx.isnan", v, nullptr), v, back, nullptr);
}

/*! \brief The float32 constant \p value rounded to bfloat16 precision as `BFloat16Rounded`
 *         rounds a variable (NaN kept). */
double BFloat16RoundedConstant(double value) {
  float f = static_cast<float>(value);
  if (std::isnan(f)) return value;
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  bits = (bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

/*! \brief float32 \p v clamped to [lowest, highest], NaN to 0. */
ffi::Any Saturated(const ffi::Any& v, DLDataType wide, const RoundTripType& target) {
  ffi::Any clamped = CallGlobal(
      "prim.Min",
      CallGlobal("prim.Max", v, FloatConstant(wide, target.lowest, wide.lanes), nullptr),
      FloatConstant(wide, target.highest, wide.lanes), nullptr);
  return CallGlobal("prim.Select", CallGlobal("tirx.isnan", v, nullptr),
                    FloatConstant(wide, 0.0, wide.lanes), clamped, nullptr);
}

/*! \brief The value \p value takes after the round trip through \p target, in a function
 *         for target kind \p target_kind. */
ffi::ObjectRef RoundTrip(const ffi::ObjectRef& value, const RoundTripType& target,
                         const std::string& target_kind) {
  DLDataType wide = DTypeOf(value);
  if (target.narrowing == Narrowing::kFloatCast) {
    ffi::Any narrowed = CallGlobal("prim.Cast", WithLanes(target.dtype, wide.lanes), value,
                                   nullptr);
    return CallGlobal("prim.Cast", wide, narrowed, nullptr).cast<ffi::ObjectRef>();
  }
  static const NodeType float_imm("ir.FloatImm");
  static const Field imm_value("ir.FloatImm", "value");
  if (target.narrowing == Narrowing::kBFloat16Bits && target_kind == "cuda" &&
      float_imm.Holds(value)) {
    return FloatConstant(wide, BFloat16RoundedConstant(imm_value(value).cast<double>()), 1);
  }
  ffi::Any v = CallGlobal("ir.Var", ffi::String("v"), CallGlobal("ir.PrimType", wide), nullptr);
  ffi::Any body;
  if (target.narrowing == Narrowing::kBFloat16Bits) {
    body = BFloat16Rounded(v, wide);
  } else {
    ffi::Any narrowed = CallGlobal("prim.Cast", WithLanes(target.dtype, wide.lanes),
                                   Saturated(v, wide, target), nullptr);
    body = CallGlobal("prim.Cast", wide, narrowed, nullptr);
  }
  return CallGlobal("prim.Let", v, value, body, nullptr).cast<ffi::ObjectRef>();
}

/*! \brief One site as the Python side lists it. */
struct Site {
  std::string kind;
  std::string description;
  std::string skip_reason;
};

const NodeType& BufferStoreType() {
  static const NodeType type("tirx.BufferStore");
  return type;
}

/*!
 * \brief ``store to B[i, j] (float32)``, worded as the Python store operators word it
 *        (``kernel_operators.stores.describe_store``), so the two list the same stores alike.
 */
std::string DescribeStore(const ffi::ObjectRef& store, const std::string& kind) {
  static const Field store_value("tirx.BufferStore", "value");
  static const Field store_buffer("tirx.BufferStore", "buffer");
  static const Field store_indices("tirx.BufferStore", "indices");
  static const Field var_name("ir.Var", "name");
  static const NodeType float_imm("ir.FloatImm");
  std::string indices;
  for (const ffi::Any& index : store_indices(store).cast<ffi::Array<ffi::Any>>()) {
    std::string text = CallGlobal("ffi.ReprPrint", index).cast<ffi::String>();
    std::string collapsed;  // whitespace runs become one space, as Python's " ".join(split())
    for (char c : text) {
      if (!std::isspace(static_cast<unsigned char>(c))) {
        collapsed += c;
      } else if (!collapsed.empty() && collapsed.back() != ' ') {
        collapsed += ' ';
      }
    }
    while (!collapsed.empty() && collapsed.back() == ' ') collapsed.pop_back();
    indices += (indices.empty() ? "" : ", ") + collapsed;
  }
  if (indices.size() > 60) indices = indices.substr(0, 57) + "...";
  std::string buffer = var_name(store_buffer(store).cast<ffi::ObjectRef>()).cast<ffi::String>();
  // a constant store often round-trips to itself (0.0): say so, it is an equivalent mutant
  std::string constant = float_imm.Holds(store_value(store)) ? ", a constant" : "";
  return "store to " + buffer + "[" + indices + "] (" + kind + ")" + constant;
}

/*!
 * \brief Walk \p func's stores: number the float32 ones, and rewrite those at \p positions
 *        (all of them when \p all is set) that can be rewritten.
 */
ffi::ObjectRef WalkStores(const ffi::ObjectRef& func, const RoundTripType& target,
                          const std::set<int64_t>& positions, bool all,
                          std::vector<Site>* sites) {
  static const Field store_value("tirx.BufferStore", "value");
  static const Field store_buffer("tirx.BufferStore", "buffer");
  static const Field store_indices("tirx.BufferStore", "indices");
  static const Field stmt_span("tirx.Stmt", "span");
  int64_t next = 0;
  std::string target_kind = TargetKindOf(func);
  return KernelWalk::Map(func, BufferStoreType(), [&](const ffi::ObjectRef& store) {
    ffi::ObjectRef value = store_value(store).cast<ffi::ObjectRef>();
    DLDataType dtype = DTypeOf(value);
    if (!IsFloat32(dtype)) return store;
    int64_t position = next++;
    std::string skip = SkipReason(value, target, target_kind);
    if (sites != nullptr) {
      std::string kind = ffi::DLDataTypeToString(dtype);
      sites->push_back({kind, DescribeStore(store, kind), skip});
    }
    if (!skip.empty() || !(all || positions.count(position))) return store;
    return CallGlobal("tirx.BufferStore", store_buffer(store),
                      RoundTrip(value, target, target_kind), store_indices(store),
                      stmt_span(store))
        .cast<ffi::ObjectRef>();
  });
}

ffi::Array<ffi::Array<ffi::String>> ArithTypeSites(const ffi::ObjectRef& func,
                                                   const ffi::String& dtype) {
  std::vector<Site> sites;
  WalkStores(func, ParseTarget(dtype), {}, false, &sites);
  ffi::Array<ffi::Array<ffi::String>> result;
  for (const Site& site : sites) {
    result.push_back({site.kind, site.description, site.skip_reason});
  }
  return result;
}

ffi::ObjectRef StoreRoundTripFunc(const ffi::ObjectRef& func, const ffi::String& dtype,
                                  const ffi::Array<int64_t>& positions) {
  return WalkStores(func, ParseTarget(dtype), {positions.begin(), positions.end()}, false,
                    nullptr);
}

/*! \brief The module pass: every PrimFunc named in \p sites (or all), those positions. */
ffi::Any StoreRoundTrip(const ffi::String& dtype,
                        const ffi::Optional<ffi::Map<ffi::String, ffi::Array<int64_t>>>& sites) {
  RoundTripType target = ParseTarget(dtype);
  // TVM hands the module over as an rvalue reference (it may be moved from).
  auto pass_func = [target, sites](ffi::RValueRef<ffi::ObjectRef> moved,
                                   ffi::AnyView) -> ffi::ObjectRef {
    static const Field functions("ir.IRModule", "functions");
    static const Field name_hint("ir.GlobalVar", "name_hint");
    static const NodeType prim_func("tirx.PrimFunc");
    ffi::ObjectRef mod = *std::move(moved);
    ffi::ObjectRef out = CallGlobal("ir.Module_Clone", mod).cast<ffi::ObjectRef>();
    auto funcs = functions(mod).cast<ffi::Map<ffi::ObjectRef, ffi::ObjectRef>>();
    for (const auto& [gvar, func] : funcs) {
      if (!prim_func.Holds(func)) continue;
      bool all = !sites.has_value();
      std::set<int64_t> positions;
      if (!all) {
        ffi::String name = name_hint(gvar).cast<ffi::String>();
        auto chosen = sites.value().find(name);
        if (chosen == sites.value().end()) continue;
        positions.insert((*chosen).second.begin(), (*chosen).second.end());
      }
      ffi::ObjectRef new_func = WalkStores(func, target, positions, all, nullptr);
      if (!new_func.same_as(func)) CallGlobal("ir.Module_UpdateFunction", out, gvar, new_func);
    }
    return out;
  };
  ffi::Any info = CallGlobal("transform.PassInfo", 0, ffi::String("mutatenn.StoreRoundTrip"),
                             ffi::Array<ffi::String>{}, false);
  return CallGlobal("transform.MakeModulePass", ffi::Function::FromTyped(pass_func), info);
}

}  // namespace

TVM_FFI_STATIC_INIT_BLOCK() {
  namespace refl = tvm::ffi::reflection;
  refl::GlobalDef()
      .def("mutatenn.ArithTypeSites", ArithTypeSites)
      .def("mutatenn.StoreRoundTripFunc", StoreRoundTripFunc)
      .def("mutatenn.transform.StoreRoundTrip", StoreRoundTrip);
}

}  // namespace mutatenn
