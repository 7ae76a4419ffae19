/* namespace.h - link-time names of the store's internal cross-file functions.
 *
 * The library is linked into the gateway, which has its own xmalloc(),
 * stream_new() and so on. Every non-static store function that is not part
 * of store.h is renamed here to a store_i_ prefix, so the library exports
 * nothing but store_* API names and store_i_* internals. Included first by
 * every private header; the source keeps the short names.
 */
#ifndef SLUICE_STORE_NAMESPACE_H
#define SLUICE_STORE_NAMESPACE_H

#define cat_writer_append store_i_cat_writer_append
#define cat_writer_free store_i_cat_writer_free
#define catalog_durable store_i_catalog_durable
#define catalog_free store_i_catalog_free
#define catalog_open store_i_catalog_open
#define catalog_record store_i_catalog_record
#define catalog_rollback store_i_catalog_rollback
#define catalog_take_unposted store_i_catalog_take_unposted
#define chunk_unref store_i_chunk_unref
#define err_errno store_i_err_errno
#define err_from_errno store_i_err_from_errno
#define err_set store_i_err_set
#define io_write_all store_i_io_write_all
#define record_crc32c store_i_record_crc32c
#define record_decode store_i_record_decode
#define record_encode store_i_record_encode
#define record_peek_arrival store_i_record_peek_arrival
#define record_peek_seq store_i_record_peek_seq
#define segment_create store_i_segment_create
#define segment_free store_i_segment_free
#define segment_index_seq store_i_segment_index_seq
#define segment_index_time store_i_segment_index_time
#define segment_note_frames store_i_segment_note_frames
#define segment_parse_name store_i_segment_parse_name
#define segment_scan store_i_segment_scan
#define segment_seal store_i_segment_seal
#define shard_commit store_i_shard_commit
#define shard_destroy_data store_i_shard_destroy_data
#define shard_fire_listeners store_i_shard_fire_listeners
#define shard_fire_tickets store_i_shard_fire_tickets
#define shard_free store_i_shard_free
#define shard_new store_i_shard_new
#define shard_publish store_i_shard_publish
#define shard_read_fd store_i_shard_read_fd
#define shard_sync_failed store_i_shard_sync_failed
#define shard_trim store_i_shard_trim
#define shard_unlink_chunk store_i_shard_unlink_chunk
#define stream_bury store_i_stream_bury
#define stream_catalog_durable store_i_stream_catalog_durable
#define stream_consumer_put store_i_stream_consumer_put
#define stream_detach store_i_stream_detach
#define stream_insert store_i_stream_insert
#define stream_release store_i_stream_release
#define stream_undo store_i_stream_undo
#define stream_free store_i_stream_free
#define stream_name_valid store_i_stream_name_valid
#define stream_new store_i_stream_new
#define stream_set_arn store_i_stream_set_arn
#define stream_tag_put store_i_stream_tag_put
#define syncer_fd store_i_syncer_fd
#define syncer_free store_i_syncer_free
#define syncer_fsyncs store_i_syncer_fsyncs
#define syncer_new store_i_syncer_new
#define syncer_post store_i_syncer_post
#define syncer_catalog_reset store_i_syncer_catalog_reset
#define syncer_post_catalog store_i_syncer_post_catalog
#define syncer_take store_i_syncer_take
#define syncer_wait_idle store_i_syncer_wait_idle
#define xcalloc store_i_xcalloc
#define xmalloc store_i_xmalloc
#define xrealloc store_i_xrealloc
#define xstrdup store_i_xstrdup
#define store_log store_i_store_log
#define store_now store_i_store_now
#define store_fifo_add store_i_store_fifo_add
#define store_fifo_remove store_i_store_fifo_remove
#define store_default_io store_i_store_default_io

#endif
