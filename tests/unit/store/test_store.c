#include "helpers.h"
Test(placeholder, x) {}
