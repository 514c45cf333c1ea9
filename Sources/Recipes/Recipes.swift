// Recipes module
