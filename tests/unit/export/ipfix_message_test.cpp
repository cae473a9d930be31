#include "nflowd/ipfix_encoder.hpp"
