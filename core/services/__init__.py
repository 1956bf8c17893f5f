"""Services: the product's use cases, each checking permissions before acting."""
