#include "io/safetensors.h"

#include <fcntl.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <numeric>
#include <unordered_set>

#include "io/atomic_file.h"

namespace rlaif {

static_assert(std::endian::native == std::endian::little,
              "safetensors stores little-endian data; rlaif maps it without byte swapping");

namespace {

// Hugging Face's reader refuses larger headers; a bigger length is a corrupt or foreign file.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

constexpr DType kAllDTypes[] = {DType::f32, DType::bf16, DType::f16,
                                DType::i32, DType::i64,  DType::u8};

std::string describe(const std::string& path) {
  return "safetensors '" + path + "': ";
}

std::string offsets_str(const TensorInfo& info) {
  return Error::concat('[', info.data_begin, ", ", info.data_end, ']');
}

using JsonValue = rapidjson::Value;

// Parses one tensor's header entry. `where` prefixes every message with the file and tensor.
TensorInfo parse_entry(const JsonValue& entry, const std::string& where) {
  RLAIF_CHECK(entry.IsObject(), where,
              "header entry must be an object with \"dtype\", \"shape\" and \"data_offsets\"");
  auto field = [&](const char* key) -> const JsonValue& {
    auto it = entry.FindMember(key);
    RLAIF_CHECK(it != entry.MemberEnd(), where, "header entry is missing \"", key, "\"");
    return it->value;
  };

  TensorInfo info;
  const JsonValue& dtype = field("dtype");
  RLAIF_CHECK(dtype.IsString(), where, "\"dtype\" must be a string");
  std::string_view dtype_text(dtype.GetString(), dtype.GetStringLength());
  std::optional<DType> parsed = parse_safetensors_dtype(dtype_text);
  RLAIF_CHECK(parsed.has_value(), where, "unknown or unsupported dtype '", dtype_text,
              "' (rlaif reads F32, BF16, F16, I32, I64 and U8)");
  info.dtype = *parsed;

  const JsonValue& shape = field("shape");
  RLAIF_CHECK(shape.IsArray(), where, "\"shape\" must be an array of integers");
  for (const JsonValue& d : shape.GetArray()) {
    RLAIF_CHECK(d.IsInt64() || d.IsUint64(), where, "\"shape\" must be an array of integers");
    RLAIF_CHECK(d.IsInt64(), where, "dimension ", d.GetUint64(), " in \"shape\" is out of range");
    RLAIF_CHECK(d.GetInt64() >= 0, where, "negative dimension ", d.GetInt64(), " in \"shape\"");
    info.shape.push_back(d.GetInt64());
  }
  // The running product must stay representable: Tensor computes numel the same way, and the
  // byte count must fit in int64 as well.
  int64_t bytes = static_cast<int64_t>(dtype_size(info.dtype));
  for (int64_t d : info.shape) {
    RLAIF_CHECK(!__builtin_mul_overflow(bytes, d, &bytes), where, "shape ", shape_str(info.shape),
                " of ", dtype_text, " overflows: its byte size does not fit in 64 bits");
  }

  const JsonValue& offsets = field("data_offsets");
  bool well_formed =
      offsets.IsArray() && offsets.Size() == 2 && offsets[0].IsUint64() && offsets[1].IsUint64();
  RLAIF_CHECK(well_formed, where,
              "\"data_offsets\" must be [begin, end] with two non-negative integers");
  info.data_begin = offsets[0].GetUint64();
  info.data_end = offsets[1].GetUint64();
  RLAIF_CHECK(info.data_begin <= info.data_end, where, "data_offsets ", offsets_str(info),
              " have begin > end");
  RLAIF_CHECK(info.nbytes() == static_cast<uint64_t>(bytes), where, "data_offsets ",
              offsets_str(info), " span ", info.nbytes(), " bytes, which does not match shape ",
              shape_str(info.shape), " of ", dtype_text, " (", bytes, " bytes)");
  return info;
}

std::map<std::string, std::string> parse_metadata(const JsonValue& value,
                                                  const std::string& where) {
  std::map<std::string, std::string> out;
  if (value.IsNull()) return out;
  RLAIF_CHECK(value.IsObject(), where, "\"__metadata__\" must be an object of strings");
  for (const auto& m : value.GetObject()) {
    std::string key(m.name.GetString(), m.name.GetStringLength());
    RLAIF_CHECK(m.value.IsString(), where, "\"__metadata__\" must map strings to strings; key '",
                key, "' holds something else");
    RLAIF_CHECK(!out.count(key), where, "duplicate key '", key, "' in \"__metadata__\"");
    out[key] = std::string(m.value.GetString(), m.value.GetStringLength());
  }
  return out;
}

}  // namespace

const char* safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return "F32";
    case DType::bf16:
      return "BF16";
    case DType::f16:
      return "F16";
    case DType::i32:
      return "I32";
    case DType::i64:
      return "I64";
    case DType::u8:
      return "U8";
  }
  throw Error("safetensors_dtype_name: invalid dtype value ", static_cast<int>(dtype));
}

std::optional<DType> parse_safetensors_dtype(std::string_view name) {
  for (DType d : kAllDTypes) {
    if (name == safetensors_dtype_name(d)) return d;
  }
  return std::nullopt;
}

// The read-only view of the whole file; unmapped when the last file handle and tensor are gone.
struct SafetensorsFile::Mapping {
  char* base = nullptr;
  size_t size = 0;
  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (base != nullptr) ::munmap(base, size);
  }
};

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  const std::string where = describe(path);
  SafetensorsFile file;
  file.path_ = path;

  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  RLAIF_CHECK(fd >= 0, where, "cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    bool is_dir = S_ISDIR(st.st_mode);
    ::close(fd);
    throw Error(where, is_dir ? "is a directory, not a file" : "is not a regular file");
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    throw Error(where, "file is ", size,
                " bytes, shorter than the 8-byte header length every safetensors file starts "
                "with");
  }
  // Private and writable: writes into a tensor land in copy-on-write pages, never in the file,
  // so an in-place kernel on a loaded weight cannot crash on a read-only page.
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  int map_errno = errno;
  ::close(fd);  // the mapping keeps its own reference to the file
  RLAIF_CHECK(base != MAP_FAILED, where, "mmap of ", size,
              " bytes failed: ", std::strerror(map_errno));
  file.mapping_ = std::make_shared<Mapping>();
  file.mapping_->base = static_cast<char*>(base);
  file.mapping_->size = size;
  const char* bytes = file.mapping_->base;

  uint64_t n = 0;
  std::memcpy(&n, bytes, 8);
  RLAIF_CHECK(n <= kMaxHeaderBytes, where, "header length ", n,
              " exceeds the 100 MB limit (a corrupt file, or not a safetensors file)");
  RLAIF_CHECK(n <= size - 8, where, "truncated header: header length ", n,
              " runs past the end of the file (", size, " bytes)");
  file.header_bytes_ = n;
  file.data_bytes_ = size - 8 - n;
  const char* header = bytes + 8;
  // JSON forbids raw NUL; RapidJSON would stop at one and accept what follows.
  RLAIF_CHECK(std::memchr(header, '\0', n) == nullptr, where, "header contains a NUL byte");

  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag>(header, n);
  RLAIF_CHECK(!doc.HasParseError(), where,
              "header is not valid JSON: ", rapidjson::GetParseError_En(doc.GetParseError()),
              " (at header byte ", doc.GetErrorOffset(), ")");
  RLAIF_CHECK(doc.IsObject(), where, "header is not a JSON object");

  bool have_metadata = false;
  for (const auto& m : doc.GetObject()) {
    std::string name(m.name.GetString(), m.name.GetStringLength());
    if (name == "__metadata__") {
      RLAIF_CHECK(!have_metadata, where, "duplicate \"__metadata__\" in the header");
      file.metadata_ = parse_metadata(m.value, where);
      have_metadata = true;
      continue;
    }
    std::string tensor_where = where + "tensor '" + name + "': ";
    RLAIF_CHECK(!file.infos_.count(name), tensor_where, "duplicate tensor name in the header");
    file.infos_[name] = parse_entry(m.value, tensor_where);
    file.names_.push_back(name);
  }

  // The tensors must tile the data buffer exactly. Walk them in offset order.
  std::vector<const std::string*> order;
  for (const std::string& name : file.names_) order.push_back(&name);
  auto info_of = [&](const std::string* name) -> const TensorInfo& { return file.infos_[*name]; };
  std::stable_sort(order.begin(), order.end(), [&](const std::string* a, const std::string* b) {
    const TensorInfo &x = info_of(a), &y = info_of(b);
    return std::pair(x.data_begin, x.data_end) < std::pair(y.data_begin, y.data_end);
  });
  bool contiguous = true;
  uint64_t pos = 0, max_end = 0;
  for (const std::string* name : order) {
    contiguous = contiguous && info_of(name).data_begin == pos;
    pos = info_of(name).data_end;
    max_end = std::max(max_end, pos);
  }
  if (max_end > file.data_bytes_) {
    // A self-consistent header with missing bytes is an interrupted write or download; anything
    // else is a header pointing somewhere wrong.
    RLAIF_CHECK(!contiguous, where, "file is truncated: the header describes ", max_end,
                " bytes of tensor data but only ", file.data_bytes_, " follow it");
    for (const std::string& name : file.names_) {
      const TensorInfo& info = file.infos_[name];
      RLAIF_CHECK(info.data_end <= file.data_bytes_, where, "tensor '", name, "': data_offsets ",
                  offsets_str(info), " run past the end of the data buffer (", file.data_bytes_,
                  " bytes)");
    }
  }
  pos = 0;
  const std::string* previous = nullptr;
  for (const std::string* name : order) {
    const TensorInfo& info = info_of(name);
    RLAIF_CHECK(info.data_begin >= pos, where, "tensor '", *name, "': data_offsets ",
                offsets_str(info), " overlap tensor '", previous ? *previous : "", "' ",
                previous ? offsets_str(info_of(previous)) : "");
    RLAIF_CHECK(info.data_begin == pos, where, "hole in the data buffer: bytes [", pos, ", ",
                info.data_begin, ") before tensor '", *name, "' belong to no tensor");
    pos = info.data_end;
    previous = name;
  }
  RLAIF_CHECK(pos == file.data_bytes_, where, "bytes [", pos, ", ", file.data_bytes_,
              ") after the last tensor belong to no tensor (trailing data)");
  return file;
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = infos_.find(name);
  if (it == infos_.end()) {
    std::string some;
    for (size_t i = 0; i < names_.size() && i < 3; ++i)
      some += (i ? ", '" : " (e.g. '") + names_[i] + "'";
    if (!some.empty()) some += names_.size() > 3 ? ", ...)" : ")";
    throw Error(describe(path_), "no tensor named '", name, "'; the file holds ", names_.size(),
                " tensors", some);
  }
  return it->second;
}

Tensor SafetensorsFile::tensor(const std::string& name) const {
  const TensorInfo& ti = info(name);
  char* data = mapping_->base + 8 + header_bytes_ + ti.data_begin;
  if (reinterpret_cast<uintptr_t>(data) % dtype_size(ti.dtype) != 0) {
    Tensor copy = Tensor::empty(ti.shape, ti.dtype);
    std::memcpy(copy.raw_data(), data, ti.nbytes());
    return copy;
  }
  return Tensor::wrap(data, ti.shape, ti.dtype, Device::cpu(), mapping_);
}

void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string where = "write_safetensors '" + path + "': ";
  std::unordered_set<std::string> seen;
  for (const auto& [name, t] : tensors) {
    RLAIF_CHECK(!name.empty(), where, "empty tensor name");
    RLAIF_CHECK(name != "__metadata__", where, "\"__metadata__\" is reserved, not a tensor name");
    RLAIF_CHECK(seen.insert(name).second, where, "duplicate tensor name '", name, "'");
    RLAIF_CHECK(t.defined(), where, "tensor '", name, "' is undefined");
  }

  // Largest elements first keeps every tensor aligned to its element size: the data buffer starts
  // 8-aligned (the header is padded) and each size class sums to a multiple of the next one.
  std::vector<size_t> layout(tensors.size());
  std::iota(layout.begin(), layout.end(), size_t{0});
  std::stable_sort(layout.begin(), layout.end(), [&](size_t a, size_t b) {
    return dtype_size(tensors[a].second.dtype()) > dtype_size(tensors[b].second.dtype());
  });
  std::vector<uint64_t> begin(tensors.size());
  uint64_t pos = 0;
  for (size_t i : layout) {
    begin[i] = pos;
    pos += tensors[i].second.nbytes();
  }

  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::UTF8<>,
                    rapidjson::CrtAllocator, rapidjson::kWriteValidateEncodingFlag>
      json(buffer);
  auto key = [&](const std::string& text, const char* what) {
    RLAIF_CHECK(json.Key(text.data(), static_cast<rapidjson::SizeType>(text.size())), where, what,
                " '", text, "' is not valid UTF-8");
  };
  json.StartObject();
  if (!metadata.empty()) {
    json.Key("__metadata__");
    json.StartObject();
    for (const auto& [k, v] : metadata) {
      key(k, "metadata key");
      RLAIF_CHECK(json.String(v.data(), static_cast<rapidjson::SizeType>(v.size())), where,
                  "metadata value of '", k, "' is not valid UTF-8");
    }
    json.EndObject();
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, t] = tensors[i];
    key(name, "tensor name");
    json.StartObject();
    json.Key("dtype");
    json.String(safetensors_dtype_name(t.dtype()));
    json.Key("shape");
    json.StartArray();
    for (int64_t d : t.shape()) json.Int64(d);
    json.EndArray();
    json.Key("data_offsets");
    json.StartArray();
    json.Uint64(begin[i]);
    json.Uint64(begin[i] + t.nbytes());
    json.EndArray();
    json.EndObject();
  }
  json.EndObject();
  std::string header(buffer.GetString(), buffer.GetSize());
  header.append((8 - header.size() % 8) % 8, ' ');
  RLAIF_CHECK(header.size() <= kMaxHeaderBytes, where, "header of ", header.size(),
              " bytes exceeds the 100 MB limit readers enforce (too many tensors for one file)");

  AtomicFileWriter out(path);
  uint64_t n = header.size();
  out.write(&n, 8);
  out.write(header);
  for (size_t i : layout) {
    const Tensor& t = tensors[i].second;
    if (t.nbytes() == 0) continue;
    Tensor host = t.device().is_cpu() ? t : t.to(Device::cpu());
    out.write(host.raw_data(), host.nbytes());
  }
  out.commit();
}

}  // namespace rlaif
