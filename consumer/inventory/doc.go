// Package inventory is the first kafkasub handler: a legacy Inventory Management system
// produces {"product_code": "...", "inventory_count": N} to the topic
// inventory_management_product_updates, and the products row with that code gets its
// inventory set. Importing the package registers the handler HandlerName.
//
// It keeps the shape of the Rails/Karafka app it replaces, one type and file per role:
// the consumer hands its messages to a service object so that Kafka concerns do not mix
// with the business operation, and the service leaves validation to the model
// (ActiveModel's validates), so it has almost no branches of its own.
//
//	handler.go     Handler: decodes each message (message.go), hands the batch to the
//	               service, maps the outcomes back onto the messages
//	service.go     Service: validates every update and applies the valid ones, in the
//	               runtime's transaction
//	validator.go   Validator: the declared validations, every problem in ActiveModel's words
//	repository.go  Repository: the SQL (gorm): one UPDATE per batch, which reports the
//	               products it found, and a lookup only for the codes of invalid updates
//	product.go     Product: the table, its migration and seed data
package inventory
