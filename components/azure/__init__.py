"""The Azure realisation's components (pulumi-azure-native, default API version of each
namespace). Imported only by Azure stacks: an AWS stack never loads this package (a lint
contract and tests/infra/azure/test_sdk_isolation.py keep it so)."""
