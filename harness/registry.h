// The explicit, greppable list of transports (drivers/drivers.h declares one
// info function per driver file; registry.cc lists them in order).
#pragma once
#include <string>
#include <vector>

#include "harness/driver.h"
#include "harness/generator.h"

namespace zc {

const std::vector<DriverInfo>& all_drivers();
// Throws UsageError listing the known names for that direction.
const DriverInfo& find_driver(const std::string& name, Direction dir);

// External generators (pktgen, trafgen); the flood is not listed here.
const std::vector<GeneratorInfo>& all_generators();
// Throws UsageError listing the known names (flood included).
const GeneratorInfo& find_generator(const std::string& name);
DriverOptions validate_generator_options(const GeneratorInfo& info, const std::map<std::string, std::string>& given);

// Options every sink has, whatever its transport (accounting=full|count).
const std::vector<OptionSpec>& common_rx_options();

// Validates a driver spec against its driver's options (common ones included for RX).
DriverOptions validate_driver_options(const DriverInfo& info, const std::map<std::string, std::string>& given);

}  // namespace zc
