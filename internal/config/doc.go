// Package config loads the programs' YAML files strictly (an unknown or
// misspelt key is an error naming its line) and builds the logger both
// programs configure the same way. It knows nothing of what the files mean.
package config
